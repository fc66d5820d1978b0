"""Executors: where batches are generated and scored.

The contract: the engine calls ``start(computer)`` once with its ``BatchComputer`` (an executor never sees
the engine, the store or the loop), then ``submit(batch)`` with an ``eacps.engine.batch.Batch`` and gets a future of
``[(Generated, Scored | None), ...]``, one pair per recipe, in order; exactly what ``computer.compute(batch)``
returns. An executor that computes elsewhere (Ray actors) builds its own computer from specs of
``computer.generator``/``potential``/``preview_potential`` (and ``timeout_s``). ``capacity`` is how many
batches it takes in flight; ``shutdown()`` releases its workers (``start`` may be called again after it).
A future that raises fails its batch (every candidate FAILED with the error), the run goes on.

* ``inline`` computes in the calling thread (no overlap): the reference behaviour.
* ``local`` (default) overlaps generation and scoring in-process: batch k is scored on a worker thread
  while batch k+1 is generated; a bounded number of batches in flight keeps memory flat.

Overlap never changes what a strategy asks: the engine asks ahead only strategies that declare
``ask_ahead = True`` and tells every result in the order asked, so results equal the sequential engine's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from eacps.hookspecs import hookimpl
from eacps.params import NoParams, Params

if TYPE_CHECKING:
    from eacps.engine.batch import Batch, BatchComputer


class Executor(ABC):
    name: ClassVar[str]
    Params: ClassVar[type[Params]] = NoParams

    def __init__(self, params: Params | None = None) -> None:
        self.params = params if params is not None else self.Params()
        self.computer: BatchComputer | None = None

    def start(self, computer: BatchComputer) -> None:
        """Called before the first submit (load models, start workers...) with the batch computer to use."""
        self.computer = computer

    @property
    def capacity(self) -> int:
        """Batches accepted in flight at once."""
        return 1

    @property
    def workers(self) -> int:
        """How many generator workers (shown in the progress bar)."""
        return 1

    @abstractmethod
    def submit(self, batch: Batch) -> Future:
        """A future of ``[(Generated, Scored | None)]``, one pair per recipe of ``batch``, in order."""

    def shutdown(self) -> None:  # noqa: B027 - optional hook
        pass

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "workers": self.workers}


class InlineExecutor(Executor):
    """Computes each batch in the calling thread."""

    name = "inline"

    def submit(self, batch: Batch) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(self.computer.compute(batch))
        except Exception as exc:
            fut.set_exception(exc)
        return fut


class LocalParams(Params):
    max_inflight: int = Field(3, ge=1, description="batches in flight (generated but not yet scored) at most")


class LocalExecutor(Executor):
    """One generation thread and one scoring thread: scoring of batch k overlaps generation of batch k+1."""

    name = "local"
    Params = LocalParams

    def start(self, computer: BatchComputer) -> None:
        super().start(computer)
        self._gen = ThreadPoolExecutor(1, thread_name_prefix="eacps-gen")
        self._score = ThreadPoolExecutor(1, thread_name_prefix="eacps-score")

    @property
    def capacity(self) -> int:
        return self.params.max_inflight

    def submit(self, batch: Batch) -> Future:
        computer = self.computer
        gen = self._gen.submit(computer.generate, batch)
        out: Future = Future()

        def score_when_generated(g: Future) -> None:
            def score() -> None:
                try:
                    out.set_result(computer.score(batch, g.result()))
                except BaseException as exc:
                    out.set_exception(exc)

            self._score.submit(score)

        gen.add_done_callback(score_when_generated)
        return out

    def shutdown(self) -> None:
        self._gen.shutdown(wait=True)
        self._score.shutdown(wait=True)


@hookimpl
def register_executors(register):
    register(InlineExecutor)
    register(LocalExecutor)
