"""Shared failure helpers: one-line errors, time limits on plugin calls, a clean interrupt."""

from __future__ import annotations

import signal
import threading

import pytest

from eacps.errors import CallTimeout, Interrupted, call_with_timeout, one_line


def test_one_line_collapses_whitespace_and_cuts_with_an_ellipsis():
    assert one_line(ValueError("bad\n  value\tthere")) == "ValueError: bad value there"
    assert one_line(RuntimeError()) == "RuntimeError"
    assert one_line("x" * 10, limit=5) == "xxxx…"


def test_a_call_past_its_limit_raises_and_is_left_behind():
    release = threading.Event()
    with pytest.raises(CallTimeout, match=r"^scorer 'j' timed out after 0.05 s$"):
        call_with_timeout(release.wait, 0.05, "scorer 'j'")
    release.set()
    assert call_with_timeout(lambda: 3, 1.0, "x") == 3
    assert call_with_timeout(lambda: 4, None, "x") == 4
    with pytest.raises(KeyError):  # the call's own error comes through
        call_with_timeout(lambda: {}["k"], 1.0, "x")


def test_interrupted_carries_the_exit_code_and_the_resume_hint():
    exc = Interrupted(signal.SIGTERM)
    assert exc.exit_code == 143 and isinstance(exc, KeyboardInterrupt)
    assert str(exc) == "interrupted by SIGTERM; every finished batch is stored: rerun the same command to resume"
