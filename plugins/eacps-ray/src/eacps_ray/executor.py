"""The ``ray`` executor: long-lived generator and scorer actors, kept busy by the engine's ``run_all``.

* **Actors.** ``num_generators`` generator actors (default: one per GPU of the cluster with
  ``num_gpus=1`` each, or one CPU actor when the cluster has no GPU) each build the generator once from
  its plugin spec; ``num_scorers`` scorer actors (default 1; give a VLM judge its own GPU with
  ``gpus_per_scorer = 1``) build the potential. A batch is generated on the least-loaded generator actor
  and then scored on the least-loaded scorer actor, so generation and scoring overlap. With
  ``num_scorers = 0`` each generator actor scores its own batches.
* **Capacity.** ``live generator actors x queue_depth`` batches in flight: the engine's ``run_all`` keeps
  that many batches submitted across all its searches, so an actor always has its next batch queued.
* **Faults.** An actor that dies is replaced (at most ``max_restarts`` times per actor slot); the batch it
  was running and every batch queued on it are re-queued on live actors (one that had finished there is
  delivered, not re-run: ``finished_before_death``). Only the batch that was running is charged a retry:
  after ``max_task_retries`` retries its candidates come back FAILED with the reason. Each batch's future is
  resolved exactly once and the engine writes rows from resolved futures only, on the driver, so every
  candidate is stored exactly once.
* **Cluster.** ``ray.init()`` starts a local Ray by default (``init_kwargs`` go to it); ``address`` joins a
  cluster started with ``ray start --head`` on one node and ``ray start --address=HEAD:6379`` on the
  others. If this process already called ``ray.init``, that connection is used as is.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import OrderedDict, deque
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pydantic import Field

from eacps.engine.executor import Executor
from eacps.errors import one_line
from eacps.params import Params
from eacps.potential import Scored
from eacps.recipe import Recipe
from eacps.types import Generated, Status
from eacps_ray.specs import WorkerSpec, worker_spec
from eacps_ray.worker import Role, Worker

if TYPE_CHECKING:
    from eacps.engine.batch import Batch, BatchComputer


class RayParams(Params):
    address: str | None = Field(
        None, description="cluster to join ('auto', 'HOST:6379' or 'ray://HOST:10001'); default: start Ray locally"
    )
    num_generators: int | None = Field(
        None, ge=1, description="generator actors; default: one per GPU in the cluster, else 1 CPU actor"
    )
    num_scorers: int = Field(1, ge=0, description="scorer actors; 0 scores inside the generator actors")
    gpus_per_generator: float | None = Field(
        None, ge=0, description="GPUs per generator actor; default: 1 when the cluster has GPUs, else 0"
    )
    gpus_per_scorer: float = Field(0.0, ge=0, description="GPUs per scorer actor (1 gives a VLM judge its own GPU)")
    cpus_per_actor: float = Field(1.0, ge=0, description="CPUs reserved per actor")
    queue_depth: int = Field(2, ge=1, description="batches in flight per actor (capacity = generators x depth)")
    max_restarts: int = Field(3, ge=0, description="times each actor is replaced after it dies")
    max_task_retries: int = Field(
        2, ge=0, description="re-runs of a batch whose actor died while running it; then its candidates are FAILED"
    )
    plugin_modules: list[str] = Field(
        default_factory=list,
        description="modules each actor imports and registers as plugins (the driver's in-process plugin "
        "modules are added automatically; entry-point plugins need nothing)",
    )
    pythonpath: list[str] = Field(default_factory=list, description="directories prepended to sys.path in actors")
    runtime_env: dict[str, Any] | None = Field(None, description="Ray runtime_env of the actors")
    init_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="extra ray.init arguments when this executor starts Ray (e.g. num_cpus)"
    )
    start_timeout_s: float = Field(600.0, gt=0, description="seconds to wait for the actors to load their models")


class RayExecutorError(RuntimeError):
    pass


@dataclass(eq=False)
class _Slot:
    """One actor position; its actor is replaced when it dies (``generation`` counts replacements)."""

    role: Role
    index: int
    handle: Any
    generation: int = 0
    restarts: int = 0
    alive: bool = True
    inflight: list[_Task] = field(default_factory=list)  # launched on this generation, in launch order


@dataclass(eq=False)
class _Task:
    recipes: list[Recipe]
    context_ref: Any  # the Batch without its recipes, in the object store (condition, prior, statistics)
    future: Future
    stage: str = "gen"  # "gen", then "score" when scorer actors exist
    attempts: int = 0  # deaths of the actor running it, at this stage
    token: int = 0  # bumped on every launch and re-queue: events of older launches are ignored
    slot: _Slot | None = None
    generation: int = -1
    ref: Any = None
    ref_future: Future | None = None
    gens: list[Generated] | None = None
    gen_ref: Any = None

    def settled_ok(self) -> bool:
        f = self.ref_future
        return f is not None and f.done() and f.exception() is None


#: seconds the dispatch thread waits, when an actor dies, to learn which of its batches had already finished there
DEATH_GRACE_S = 2.0


def finished_before_death(tasks: list[_Task], grace_s: float = DEATH_GRACE_S) -> list[bool]:
    """Per batch launched on an actor that has died, whether it had finished there. Its result can be in Ray's store
    before the dispatch thread hears of it (``ref_future`` resolves on Ray's own event loop, after the actor's death
    may have been reported by the next batch), and a finished batch must be neither charged with the death nor run
    again: charged, a healthy batch could be FAILED in place of the one that killed the actor."""
    import ray

    settled = [t.settled_ok() for t in tasks]
    open_ = [t for t, ok in zip(tasks, settled, strict=True) if not ok and t.ref is not None]
    ready: set[str] = set()
    if open_:
        done, _ = ray.wait([t.ref for t in open_], num_returns=len(open_), timeout=grace_s)
        ready = {r.hex() for r in done}
    out = []
    for t, ok in zip(tasks, settled, strict=True):
        if not ok and t.ref is not None and t.ref.hex() in ready:
            try:
                ray.get(t.ref, timeout=grace_s)
                ok = True
            except Exception:  # the death (or the batch's own error): not finished
                ok = False
        out.append(ok)
    return out


def slot_stage(slot: _Slot) -> str:
    return "score" if slot.role == "scorer" else "gen"


def _first_line(exc: BaseException) -> str:
    """A Ray error's first line (the rest is the remote traceback), through the core's one error-line rule."""
    text = str(exc).strip().splitlines()
    return one_line(f"{type(exc).__name__}: {text[0] if text else ''}")


class RayExecutor(Executor):
    """Generator and scorer actors on a local or remote Ray cluster; see the module docstring."""

    name = "ray"
    Params = RayParams

    def __init__(self, params: RayParams | None = None) -> None:
        super().__init__(params)
        self._gens: list[_Slot] = []
        self._scorers: list[_Slot] = []
        self._thread: threading.Thread | None = None
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._pending: dict[str, deque[_Task]] = {"gen": deque(), "score": deque()}
        self._open: set[Future] = set()
        self._lock = threading.Lock()
        self._contexts: OrderedDict[tuple, tuple[Batch, Any]] = OrderedDict()
        self._owns_ray = False
        self._spec: WorkerSpec | None = None
        self.actor_info: list[dict[str, Any]] = []
        self.stats = {"batches": 0, "requeued": 0, "restarts": 0, "failed_batches": 0}

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, computer: BatchComputer) -> None:
        import ray

        super().start(computer)
        p: RayParams = self.params
        self._spec = worker_spec(
            computer.generator,
            computer.potential,
            computer.preview_potential,
            plugin_modules=p.plugin_modules,
            pythonpath=p.pythonpath,
            timeout_s=computer.timeout_s,
        )
        if not ray.is_initialized():
            ray.init(address=p.address, **p.init_kwargs)
            self._owns_ray = True
        res = ray.cluster_resources()
        gpus, cpus = float(res.get("GPU", 0.0)), float(res.get("CPU", 0.0))
        gpg = p.gpus_per_generator if p.gpus_per_generator is not None else (1.0 if gpus >= 1 else 0.0)
        n_gen = p.num_generators or (max(1, int(gpus // gpg)) if gpg > 0 else 1)
        need_cpu = (n_gen + p.num_scorers) * p.cpus_per_actor
        need_gpu = n_gen * gpg + p.num_scorers * p.gpus_per_scorer
        if need_cpu > cpus + 1e-9 or need_gpu > gpus + 1e-9:
            self._release_ray()
            raise RayExecutorError(
                f"ray executor: {n_gen} generator + {p.num_scorers} scorer actors need {need_cpu:g} CPUs and "
                f"{need_gpu:g} GPUs; the cluster has {cpus:g} CPUs and {gpus:g} GPUs (set num_generators, "
                "cpus_per_actor or gpus_per_generator)"
            )
        self._gpus = {"generator": gpg, "both": gpg, "scorer": p.gpus_per_scorer}
        self._actor_cls = ray.remote(Worker)
        gen_role: Role = "generator" if p.num_scorers else "both"
        self._gens = [_Slot(gen_role, i, self._make(gen_role)) for i in range(n_gen)]
        self._scorers = [_Slot("scorer", i, self._make("scorer")) for i in range(p.num_scorers)]
        self._check_ready()
        self._events = queue.SimpleQueue()
        self._pending = {"gen": deque(), "score": deque()}
        self._thread = threading.Thread(target=self._loop, name="eacps-ray-dispatch", daemon=True)
        self._thread.start()

    def _make(self, role: Role) -> Any:
        p: RayParams = self.params
        opts: dict[str, Any] = {
            "num_cpus": p.cpus_per_actor,
            "num_gpus": self._gpus[role],
            "max_restarts": 0,
            "max_task_retries": 0,
            "max_concurrency": 1,
        }
        if p.runtime_env is not None:
            opts["runtime_env"] = p.runtime_env
        return self._actor_cls.options(**opts).remote(self._spec, role)

    def _check_ready(self) -> None:
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        slots = self._gens + self._scorers
        try:
            infos = ray.get([s.handle.ready.remote() for s in slots], timeout=self.params.start_timeout_s)
        except GetTimeoutError:
            self.shutdown()
            raise RayExecutorError(
                f"ray executor: actors not ready after {self.params.start_timeout_s:g} s "
                "(not enough free resources in the cluster?)"
            ) from None
        except RayActorError as exc:
            self.shutdown()
            raise RayExecutorError(f"ray executor: an actor failed to build its models: {exc}") from None
        want = {
            "generator": self.computer.generator.fingerprint(),
            "potential": self.computer.potential.fingerprint(),
            "preview": self.computer.preview_potential.fingerprint() if self.computer.preview_potential else None,
        }
        for info in infos:
            for key, fp in want.items():
                if info[key] is not None and info[key] != fp:
                    self.shutdown()
                    raise RayExecutorError(
                        f"ray executor: the {key} rebuilt in a {info['role']} actor has fingerprint {info[key]}, "
                        f"the driver's has {fp}: its params do not capture everything that changes its output"
                    )
        self.actor_info = infos

    def shutdown(self) -> None:
        import ray

        if self._thread is not None:
            self._events.put(None)
            self._thread.join()
            self._thread = None
        with self._lock:
            still_open = list(self._open)
            self._open.clear()
        for fut in still_open:
            if not fut.done():
                fut.set_exception(RayExecutorError("ray executor shut down with this batch in flight"))
        for s in self._gens + self._scorers:
            if s.handle is not None and ray.is_initialized():
                with contextlib.suppress(Exception):  # already gone
                    ray.kill(s.handle, no_restart=True)
        self._gens, self._scorers = [], []
        self._contexts.clear()
        self._release_ray()

    def _release_ray(self) -> None:
        import ray

        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False

    # -- the Executor interface -----------------------------------------------------------------
    @property
    def capacity(self) -> int:
        return max(1, self.workers) * self.params.queue_depth

    @property
    def workers(self) -> int:
        """Live generator actors."""
        return sum(s.alive for s in self._gens)

    def actors(self, role: str = "generator") -> list[Any]:
        """Handles of the live actors of one role (``generator`` or ``scorer``)."""
        slots = self._scorers if role == "scorer" else self._gens
        return [s.handle for s in slots if s.alive]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "scorers": sum(s.alive for s in self._scorers), **self.stats}

    def submit(self, batch: Batch) -> Future:
        fut: Future = Future()
        if not batch.recipes:
            fut.set_result([])
            return fut
        if self._thread is None:
            raise RayExecutorError("ray executor: submit() before start()")
        with self._lock:
            self._open.add(fut)
        self._events.put(("submit", _Task(list(batch.recipes), self._context_ref(batch), fut)))
        return fut

    def _context_ref(self, batch: Batch) -> Any:
        """One object-store copy per batch context: a search's condition, prior and statistics travel once."""
        import ray

        key = (id(batch.condition), id(batch.prior), id(batch.stats), id(batch.preview_stats), batch.calibrate)
        hit = self._contexts.get(key)
        if hit is not None:
            self._contexts.move_to_end(key)
            return hit[1]
        context = replace(batch, recipes=())
        ref = ray.put(context)
        self._contexts[key] = (batch, ref)  # keeps the keyed objects alive, so their ids stay theirs
        while len(self._contexts) > 4096:
            self._contexts.popitem(last=False)
        return ref

    # -- the dispatch thread --------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            ev = self._events.get()
            if ev is None:
                return
            try:
                if ev[0] == "submit":
                    self._pending["gen"].append(ev[1])
                else:
                    self._on_done(ev[1], ev[2])
                self._pump()
            except BaseException as exc:  # a bug here must fail the batches, not hang the engine
                with self._lock:
                    still_open = list(self._open)
                    self._open.clear()
                for fut in still_open:
                    if not fut.done():
                        fut.set_exception(exc)
                return

    def _pump(self) -> None:
        depth = self.params.queue_depth
        for stage, slots in (("gen", self._gens), ("score", self._scorers)):
            pending = self._pending[stage]
            live = [s for s in slots if s.alive]
            if not live:
                while pending:
                    self._fail(
                        pending.popleft(),
                        f"no live ray {'generator' if stage == 'gen' else 'scorer'} "
                        f"actor is left (each was restarted {self.params.max_restarts} "
                        "times)",
                    )
                continue
            while pending:
                slot = min(live, key=lambda s: (len(s.inflight), s.index))
                if len(slot.inflight) >= depth:
                    break
                self._launch(pending.popleft(), slot)

    def _launch(self, task: _Task, slot: _Slot) -> None:
        task.token += 1
        task.slot, task.generation = slot, slot.generation
        slot.inflight.append(task)
        h = slot.handle
        if task.stage == "score":
            ref = h.score.remote(task.context_ref, task.recipes, task.gen_ref)
        elif self._scorers:
            ref = h.generate.remote(task.context_ref, task.recipes)
        else:
            ref = h.run.remote(task.context_ref, task.recipes)
        task.ref = ref
        task.ref_future = ref.future()
        token = task.token
        task.ref_future.add_done_callback(lambda _f, t=task, k=token: self._events.put(("done", t, k)))

    def _on_done(self, task: _Task, token: int) -> None:
        from ray.exceptions import ObjectLostError, RayActorError, RayTaskError

        if token != task.token or task.future.done():
            return  # an older launch of a re-queued task
        slot = task.slot
        exc = task.ref_future.exception()
        if isinstance(exc, RayActorError) and task.generation == slot.generation:
            self._actor_died(slot, task.generation, exc)  # re-queues this task and those behind it
            return
        if task in slot.inflight:
            slot.inflight.remove(task)
        if isinstance(exc, RayActorError):
            self._retry(task, exc)
        elif exc is None:
            value = task.ref_future.result()
            if task.stage == "gen" and self._scorers:
                task.gens, task.gen_ref = value, task.ref
                task.stage, task.attempts = "score", 0
                self._pending["score"].append(task)
            elif task.stage == "gen":
                self._resolve(task, value)
            else:
                self._resolve(task, list(zip(task.gens, value, strict=True)))
        elif isinstance(exc, ObjectLostError) and task.stage == "score":
            import ray  # the generated images were lost with their node: send the driver's copy

            task.gen_ref = ray.put(task.gens)
            self._retry(task, exc)
        else:
            cause = exc.cause if isinstance(exc, RayTaskError) and exc.cause is not None else exc
            self.stats["failed_batches"] += 1
            self._settle(task, exception=cause)

    def _actor_died(self, slot: _Slot, generation: int, exc: BaseException) -> None:
        """Replace the actor (bounded); re-queue its unfinished batches, charging the one it was running."""
        import ray

        if generation != slot.generation:
            return
        finished = finished_before_death(slot.inflight)
        victims = [t for t, f in zip(slot.inflight, finished, strict=True) if not f]
        slot.inflight = [t for t, f in zip(slot.inflight, finished, strict=True) if f]  # their own events deliver them
        with contextlib.suppress(Exception):  # already dead
            ray.kill(slot.handle, no_restart=True)
        if slot.restarts < self.params.max_restarts:
            slot.restarts += 1
            slot.generation += 1
            slot.handle = self._make(slot.role)
            self.stats["restarts"] += 1
        else:
            slot.alive, slot.handle = False, None
        if not victims:
            return
        # the actor ran its batches in launch order: the first unfinished one was running when it died
        if not self._charge(victims[0], exc):
            victims = victims[1:]
        for t in victims:  # the others were only queued behind it: re-queued, not charged
            t.token += 1
        self._pending[slot_stage(slot)].extendleft(reversed(victims))
        self.stats["requeued"] += len(victims)

    def _charge(self, task: _Task, exc: BaseException) -> bool:
        """Count one failed attempt; past ``max_task_retries`` the batch is FAILED (returns False)."""
        task.attempts += 1
        if task.attempts <= self.params.max_task_retries:
            return True
        role = "generator" if task.stage == "gen" else "scorer"
        self._fail(
            task,
            f"ray {role} actor failed this batch {task.attempts} time(s) "
            f"(max_task_retries={self.params.max_task_retries}): {_first_line(exc)}",
        )
        return False

    def _retry(self, task: _Task, exc: BaseException) -> None:
        if self._charge(task, exc):
            task.token += 1
            self._pending[task.stage].appendleft(task)
            self.stats["requeued"] += 1

    def _fail(self, task: _Task, reason: str) -> None:
        """Resolve with FAILED candidates: generation failed, or generated images that could not be scored."""
        self.stats["failed_batches"] += 1
        if task.stage == "gen":
            self._settle(task, [(Generated.failed(reason), None) for _ in task.recipes])
        else:
            self._settle(task, [(g, Scored({}, None, reason) if g.status is Status.OK else None) for g in task.gens])

    def _resolve(self, task: _Task, value: list) -> None:
        self.stats["batches"] += 1
        self._settle(task, value)

    def _settle(self, task: _Task, value: Any = None, *, exception: BaseException | None = None) -> None:
        with self._lock:
            self._open.discard(task.future)
        task.gens = task.gen_ref = task.ref = None
        if exception is not None:
            task.future.set_exception(exception)
        else:
            task.future.set_result(value)
