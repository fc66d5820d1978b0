"""The scheduler: the ask/tell loop over many searches, kept busy through one executor.

Per search: ask -> plan against the store -> submit what is left to compute -> commit the batch -> tell,
in the order asked; each finished batch is stored before that search is asked again. Searches run
concurrently so that no worker idles while one search waits on its strategy. Before any search, each
condition's calibration sets and priors (stage 0) go through the executor like any batch.

SIGINT/SIGTERM stop the loop cleanly: the batches in flight are finished and committed, then ``Interrupted``
(exit code 128 + signal) is raised; a second signal stops at once.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from eacps.engine.batch import Batch, BatchComputer, Pair
from eacps.engine.calibrator import Calibrator
from eacps.engine.executor import Executor
from eacps.engine.meter import Cost, CostMeter
from eacps.engine.planner import CRASH_FILE, Planned, Planner
from eacps.engine.progress import SearchBars, group_label
from eacps.errors import Interrupted, one_line
from eacps.recipe import Recipe
from eacps.screening import value_seconds, with_features
from eacps.store import Candidate, Store, best_of, best_so_far, search_id
from eacps.strategy import Strategy, StrategyError
from eacps.types import Condition, Generated

DEFAULT_PRIOR_SEED = 0


@dataclass
class Job:
    """One search for ``Engine.run_all``. ``prior_seed`` picks its stage-0 prior (an explicit input)."""

    condition: Condition
    strategy: Strategy
    label: str | None = None
    search_id: str | None = None
    prior_seed: int = DEFAULT_PRIOR_SEED


@dataclass
class SearchResult:
    search_id: str
    condition: Condition
    strategy: str
    prior: Candidate
    best: Candidate | None
    history: list[Candidate]
    cost: Cost
    stop: dict[str, Any]
    diagnostics: dict[str, Any] = field(default_factory=dict)
    #: keeps a temporary store (and so the candidates' images) alive as long as the result
    keepalive: Any = field(default=None, repr=False, compare=False)

    @property
    def improvement(self) -> float | None:
        """Best potential minus the prior's (None if either is missing)."""
        if self.best is None or self.prior.potential is None:
            return None
        return self.best.potential - self.prior.potential

    def best_so_far(self) -> list[float | None]:
        """Best potential after each candidate, in the order asked."""
        return best_so_far(self.history)


@dataclass
class _Pending:
    planned: Planned
    future: Future | None = None

    @property
    def done(self) -> bool:
        return self.future is None or self.future.done()


@dataclass
class _Search:
    job: Job
    label: str
    search_id: str
    prior: Candidate
    inputs: dict[str, Any]  # the Batch fields every batch of this search shares (prior image, statistics)
    condition: Condition  # as scored: the job's condition with the prior (part of every cache key)
    history: list[Candidate] = field(default_factory=list)
    cost: Cost = field(default_factory=Cost)
    inflight: deque[_Pending] = field(default_factory=deque)
    stop: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def strategy(self) -> Strategy:
        return self.job.strategy


def _group(st: _Search) -> tuple[str, int]:
    """A search's progress group: its label (the contestant) and budget."""
    return st.label, st.strategy.budget


def prior_search(condition: Condition, prior_seed: int) -> str:
    return f"prior/{condition.id}/{prior_seed}"


class Scheduler:
    def __init__(self, computer: BatchComputer, planner: Planner, calibrator: Calibrator, meter: CostMeter,
                 executor: Executor, store: Store, *, progress: bool = False,
                 notify: Callable[[str], None] | None = None) -> None:
        self.computer, self.planner, self.calibrator, self.meter = computer, planner, calibrator, meter
        self.executor, self.store, self.progress = executor, store, progress
        #: bars of a run_all vanish when it ends (a caller that runs many short rounds: the allocator)
        self.transient_bars = False
        self.notify = notify or (lambda msg: print(f"eacps: warning: {msg}", file=sys.stderr))
        self._open: set[Future] = set()
        self._signal: int | None = None

    # -- submitting and collecting batches ------------------------------------------------------
    def submit(self, b: Planned, **inputs: Any) -> _Pending:
        """Submit ``b``'s todo recipes (none: nothing to compute). A batch that was in flight when a process
        died runs alone; one that killed the process ``MAX_DEATHS`` times is FAILED without computing."""
        p = _Pending(b)
        if not b.todo:
            return p
        if (reason := self.planner.killed_reason(b)) is not None:
            p.future = Future()
            p.future.set_result([(Generated.failed(reason), None) for _ in b.todo])
            return p
        if b.alone:
            wait(list(self._open))
        self.planner.begin(b)
        p.future = self.executor.submit(Batch(tuple(b.recipes[i] for i in b.todo), **inputs))
        self._open.add(p.future)
        if b.alone:
            wait([p.future])
        return p

    def result(self, p: _Pending) -> list[Pair] | None:
        """A batch's computed results; an executor failure fails the batch (the run goes on)."""
        if p.future is None:
            return None
        self._open.discard(p.future)
        try:
            return p.future.result()
        except Exception as exc:
            reason = f"executor {self.executor.name}: {one_line(exc)}"
            return [(Generated.failed(reason), None) for _ in p.planned.todo]

    def commit(self, p: _Pending) -> list[Candidate]:
        b = p.planned
        results = self.result(p)
        steps = [self.computer.steps_of(r) for r in b.recipes]
        meta = None
        if results is not None and p.future is not None and self.planner.killed_reason(b) is None:
            from eacps.cost import META_KEY

            meta = {META_KEY: self.meter.measure(results, [steps[i] for i in b.todo])}
        return self.planner.commit(b, results, steps, meta)

    # -- stage 0: calibration and priors --------------------------------------------------------
    def priors(self, jobs: Sequence[Job]) -> dict[str, tuple[Candidate, dict[str, Any]]]:
        """Per prior search id: the prior candidate and the Batch inputs of the searches that use it."""
        firsts = {prior_search(j.condition, j.prior_seed): j for j in jobs}
        cal = [(j, role, self.submit(b, condition=j.condition, calibrate=role))
               for j in firsts.values() for role, b in self.calibrator.plan(j.condition, j.prior_seed)]
        for j, role, p in cal:
            self.calibrator.finish(role, j.condition, j.prior_seed, p.planned, self.result(p))
        pending = {}
        for sid, j in firsts.items():
            self.planner.stash_reference(j.condition)
            stats, preview_stats = self.calibrator.stats_for(j.condition, j.prior_seed)
            b = self.planner.plan([Recipe.from_seed(j.prior_seed)], j.condition, search=sid, seq0=0, role="prior",
                                  strategy=None)
            pending[sid] = (self.submit(b, condition=j.condition, stats=stats, preview_stats=preview_stats),
                            {"stats": stats, "preview_stats": preview_stats})
        out = {}
        for sid, (p, inputs) in pending.items():
            prior = self.commit(p)[0]
            out[sid] = (prior, {**inputs, "prior": prior.image})
        return out

    # -- the loop -------------------------------------------------------------------------------
    def run_all(self, jobs: Sequence[Job], *, batch_size: int, max_steps: int | None = None) -> list[SearchResult]:
        with self._signals(), self._crash_guard():
            try:
                return self._run(jobs, batch_size, max_steps)
            finally:
                self.planner.abandon()

    def _run(self, jobs: Sequence[Job], batch_size: int, max_steps: int | None) -> list[SearchResult]:
        priors = self.priors(jobs)
        states = [self._search(job, *priors[prior_search(job.condition, job.prior_seed)], max_steps) for job in jobs]
        bars = self._bars(states)  # drawn only on a terminal (no bar spam in logs and pipes)
        try:
            active = list(states)
            while active:
                self._check_interrupt(active, bars)
                progressed = False
                for st in list(active):
                    progressed |= self._collect(st, bars)
                    if not st.inflight and self._finished(st):
                        active.remove(st)
                        progressed = True
                    elif self._ask(st, active, batch_size):
                        progressed = True
                if not progressed:
                    heads = [st.inflight[0].future for st in active if st.inflight and st.inflight[0].future]
                    wait(heads, return_when=FIRST_COMPLETED)
        finally:
            bars.close()
        return [SearchResult(st.search_id, st.job.condition, st.label, st.prior, best_of(st.history), st.history,
                             st.cost, st.stop, st.diagnostics) for st in states]

    def _search(self, job: Job, prior: Candidate, inputs: dict[str, Any], max_steps: int | None) -> _Search:
        job.strategy.bind(self.computer.generator.default_steps)  # budget B = B·T denoising steps
        job.strategy.limit(max_steps)  # the strategy stops asking where the next candidate would pass the cap
        label = job.label or job.strategy.name
        # a cap below B·T changes what a step-counting strategy plans: part of the default id
        cap = (f"m{max_steps}",) if job.strategy.capped else ()
        sid = job.search_id or search_id(job.condition.id, label, f"b{job.strategy.budget}", f"s{job.strategy.seed}",
                                         *cap)
        self.store.link_prior(sid, prior.search)
        cond = job.condition if inputs["prior"] is None else job.condition.with_prior(inputs["prior"])
        return _Search(job, label, sid, prior, {"condition": job.condition, **inputs}, cond)

    def _bars(self, states: list[_Search]) -> SearchBars:
        """A bar per search group: one contestant (label) at one budget, over its conditions."""
        groups: dict[tuple[str, int], list[_Search]] = {}
        for st in states:
            groups.setdefault(_group(st), []).append(st)
        rows = [(key, group_label(key[0], key[1], len(sts)), sum(s.strategy.budget for s in sts))
                for key, sts in groups.items()]
        return SearchBars(rows, enabled=self.progress, workers=self.executor.workers, transient=self.transient_bars)

    def _collect(self, st: _Search, bars: SearchBars) -> bool:
        """Commit and tell the finished batches at the head of ``st``'s queue (in the order asked)."""
        done = False
        while st.inflight and st.inflight[0].done:
            p = st.inflight.popleft()
            cands = self.commit(p)
            st.strategy.tell(with_features(st.strategy, self.computer.generator, cands, st.condition))
            spent = st.cost.steps
            b = p.planned
            for c, new, skipped in zip(cands, b.computed, b.skipped, strict=True):  # charged: the stored figure
                criteria = [k.name for k in self.computer.potential_for(c.recipe).criteria]
                self.meter.charge(st.cost, c, criteria, computed=new, skipped=skipped)
            st.history.extend(cands)
            # progress in candidate equivalents (budget B = B·T steps): previews and shared prefixes count their share;
            # the bar keeps the running best of its group, so this batch's best is all it needs
            batch_best = best_of(cands)
            bars.advance(_group(st), st.cost.steps - spent, st.strategy.full_steps or 1,
                         None if batch_best is None else batch_best.potential)
            if self.progress and not bars.active:  # not a terminal: a line per batch instead of a bar
                best = best_of(st.history)
                print(f"eacps: {st.search_id}: {len(st.history)} candidates, {st.cost.steps} steps, best "
                      f"{'-' if best is None else f'{best.potential:.3f}'}", file=sys.stderr, flush=True)
            done = True
        return done

    def _finished(self, st: _Search) -> bool:
        stop = st.strategy.stop()
        if not stop:
            return False
        st.stop = stop
        st.cost.value_seconds = value_seconds(st.strategy)  # a value model's fitting, prediction and features
        st.diagnostics = st.strategy.diagnostics()
        if st.diagnostics:
            self.store.set_meta(f"diagnostics/{st.search_id}", st.diagnostics)
        st.strategy.close()
        return True

    def _ask(self, st: _Search, active: list[_Search], batch_size: int) -> bool:
        if st.inflight and not st.strategy.ask_ahead:
            return False
        if sum(len(s.inflight) for s in active) >= self.executor.capacity:
            return False
        asked = st.strategy.ask_records(batch_size)
        if not asked:
            if not st.inflight:
                raise StrategyError(f"{st.strategy.name}: ask() returned nothing, nothing is pending, "
                                    "and stop() is empty")
            return False
        b = self.planner.plan([a.recipe for a in asked], st.condition, search=st.search_id, role="search",
                              seq0=asked[0].seq, strategy=st.label, parents=[a.parent for a in asked],
                              charges=[a.steps for a in asked])
        st.inflight.append(self.submit(b, **st.inputs))
        return True

    # -- signals --------------------------------------------------------------------------------
    def _check_interrupt(self, active: list[_Search], bars: SearchBars) -> None:
        """After a signal: finish and commit every batch in flight, then raise ``Interrupted``."""
        if self._signal is None:
            return
        for st in active:
            for p in st.inflight:
                if p.future is not None:
                    wait([p.future])
            self._collect(st, bars)
        raise Interrupted(self._signal)

    @contextmanager
    def _crash_guard(self) -> Iterator[None]:
        """Crash evidence for the in-flight log (``RUN_DIR/.crash``): a plugin calling ``os._exit`` in this process
        writes a line before the process ends, a fatal signal (segfault...) its traceback (``faulthandler``).
        A clean end removes the file; SIGKILL leaves none."""
        path = self.store.root / CRASH_FILE
        fh = open(path, "w")  # noqa: SIM115 - open for the whole run
        real_exit, pid, was_enabled = os._exit, os.getpid(), faulthandler.is_enabled()

        def exit_with_evidence(code: int) -> None:
            if os.getpid() == pid:  # not in a forked child
                fh.write(f"a plugin called os._exit({code})\n")
                fh.flush()
            real_exit(code)

        os._exit = exit_with_evidence
        faulthandler.enable(file=fh)
        try:
            yield
        finally:
            os._exit = real_exit
            faulthandler.disable()
            if was_enabled:
                with contextlib.suppress(Exception):  # sys.stderr may have no file descriptor (captured)
                    faulthandler.enable()
            fh.close()
            path.unlink(missing_ok=True)

    @contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM set a flag the loop checks between batches; a second one acts at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum: int, frame: Any) -> None:
            if self._signal is not None:  # the second signal: the previous behaviour, now
                for s, h in previous.items():
                    signal.signal(s, h)
                signal.raise_signal(signum)
                return
            self._signal = signum
            self.notify(f"{signal.Signals(signum).name}: stopping after the batches in flight are stored "
                        "(send it again to stop at once)")

        for s in previous:
            signal.signal(s, handler)
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
            self._signal = None
