"""Shared failure helpers: the one error-line format, timeouts around plugin calls, and a clean interrupt."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: the default length of a one-line error (reasons stored with candidates, configuration errors)
LINE_LIMIT = 300


def one_line(exc: BaseException | str, limit: int = LINE_LIMIT) -> str:
    """``Type: message`` on one line (whitespace collapsed), cut to ``limit`` characters with an ellipsis."""
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {' '.join(str(exc).split())}".rstrip(": ")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


class ConfigError(ValueError):
    """A configuration error, already formatted as one line (``eacps.config.ConfigError``: the same class)."""


class CallTimeout(TimeoutError):
    """A plugin call did not return within its time limit."""


def call_with_timeout(fn: Callable[[], T], timeout_s: float | None, what: str) -> T:
    """``fn()``, or CallTimeout after ``timeout_s`` seconds (None: no limit). A call that times out keeps running
    in a daemon thread (Python cannot kill a thread); its result is dropped and it never blocks the exit."""
    if timeout_s is None:
        return fn()
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=target, name=f"eacps-call-{what}", daemon=True)
    t.start()
    t.join(timeout_s)
    if t.is_alive():
        raise CallTimeout(f"{what} timed out after {timeout_s:g} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


class Interrupted(KeyboardInterrupt):
    """The run stopped on SIGINT/SIGTERM after committing every finished batch; ``exit_code`` is 128 + signal."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name}; every finished batch is stored: rerun the same command to resume")

    def __str__(self) -> str:
        return self.args[0]
