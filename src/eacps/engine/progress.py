"""Progress on a terminal (rich): a status line while models load, then a labelled bar per search group.

A search group is the searches of one contestant at one budget (one strategy label, one budget, every
condition): its bar is named ``"<label> B=<budget>"`` (and the number of conditions), shows the budget spent
of the total in candidate equivalents (a budget B is B·T denoising steps, so previews and shared prefixes count
their share), one rate (candidate equivalents per second) and, once a candidate has succeeded, the best
potential so far.
The bars stay on screen when the searches end. All of it only when progress is asked for and stderr is a
terminal; elsewhere (a pipe, a log) the scheduler prints a plain line per batch, and ``--quiet`` nothing.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text


def make_console() -> Console:
    """The console progress draws on: stderr (stdout keeps the command's result)."""
    return Console(stderr=True)


def shown(enabled: bool, console: Console | None = None) -> Console | None:
    """The console to draw on when ``enabled`` and it is a terminal, else None."""
    if not enabled:
        return None
    con = console or make_console()
    return con if con.is_terminal else None


@contextmanager
def status(message: str, enabled: bool) -> Iterator[None]:
    """A spinner with ``message`` (``"loading generator digits…"``) while the block runs, on a terminal only."""
    con = shown(enabled)
    if con is None:
        yield
        return
    with con.status(message):
        yield


class RateColumn(ProgressColumn):
    """One rate: candidates per second (blank until there are two samples)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.1f} cand/s", style="progress.data.speed")


class BestColumn(ProgressColumn):
    """The best potential so far, once a candidate has one."""

    def render(self, task: Task) -> Text:
        best = task.fields.get("best")
        return Text("" if best is None else f"best {best:.3f}")


def group_label(label: str, budget: int, conditions: int) -> str:
    """A bar's name: the contestant (strategy label), its budget, and how many conditions it runs on."""
    return f"{label} B={budget}" + (f" · {conditions} conditions" if conditions > 1 else "")


class SearchBars:
    """One bar per search group; ``advance`` adds spent steps and a search's best; ``close`` leaves them drawn."""

    def __init__(self, groups: Sequence[tuple[Hashable, str, int]], *, enabled: bool, workers: int = 1,
                 transient: bool = False) -> None:
        """``groups``: (key, label, total candidates) in display order; ``transient``: erased by ``close``."""
        self.console = shown(enabled)
        self._progress: Progress | None = None
        self._tasks: dict[Hashable, Any] = {}
        self._best: dict[Hashable, float] = {}
        self._steps: dict[Hashable, int] = {}
        if self.console is None:
            return
        suffix = f" ({workers} workers)" if workers > 1 else ""
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), RateColumn(), BestColumn(), console=self.console,
                                  transient=transient)
        for key, label, total in groups:
            self._tasks[key] = self._progress.add_task(label + suffix, total=total, best=None)
        self._progress.start()

    @property
    def active(self) -> bool:
        """Whether bars are drawn (a terminal, progress asked for)."""
        return self._progress is not None

    def advance(self, key: Hashable, steps: int, full_steps: int, best: float | None) -> None:
        """``steps`` more denoising steps spent in group ``key`` (``full_steps`` make a candidate); ``best``: the best
        potential among the candidates just added (the group shows the running best of all it was given)."""
        if self._progress is None:
            return
        self._steps[key] = self._steps.get(key, 0) + steps
        if best is not None and best > self._best.get(key, float("-inf")):
            self._best[key] = best
        self._progress.update(self._tasks[key], completed=self._steps[key] / max(full_steps, 1),
                              best=self._best.get(key))

    def close(self) -> None:
        """Stop drawing; the bars' last state stays on screen."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
