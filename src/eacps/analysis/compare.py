"""``eacps compare``: every strategy on every task, its charged cost, and how much best-of-N it is worth.

For each contestant, budget B and strategy seed, one search per task of the reported split. Each search is
charged what it asked (denoising steps, scorer calls per criterion, potential evaluations, previews
included). Reported per (strategy, B), with paired bootstrap 95% CIs over tasks (tasks resampled jointly
for every strategy): mean best potential, the paired difference against best-of-N and the *compute
multiplier* N*/cost. N* is the best-of-N size whose expected best (from a reference pool of best-of-N
samples per task, drawn on a seed stream no contestant uses) equals the strategy's mean best; cost is the
charged cost in best-of-N-candidate equivalents (one candidate = T steps + one potential evaluation) under
(a) the run's cost model (measured or ``[cost]``) and (b) an expensive judge, one potential evaluation
costing ``scorer_cost`` generations. A multiplier the pool cannot resolve prints as ``>pool``.

Search or sampler: a strategy whose paths take ``renoise`` branches changes how its candidates are drawn, which
by itself moves the potential. For each contestant that declares a branch schedule (``Strategy.sampler_schedule``),
compare draws a same-sampler pool (``branched-best-of-n``: random paths with exactly those branches, no selection,
on the reference pool's root seeds) and reports the multiplier against it beside the one against vanilla
best-of-N, and the sampler effect (mean potential of the branched pool minus the vanilla pool).

Protocol: the config's conditions split in order into a tuning split (the first ``tune_tasks``, where
parameters may be chosen) and an evaluation split (the rest); compare reports one split and says which.
``seed_offset`` gives fresh strategy seeds on the same tasks. Seeds are per task by default: strategy seed r
runs on each task under its own seed (a hash of the task id and r), and each task's reference pool draws its own
stream, so no noise is shared between tasks and the bootstrap over tasks covers the seeds' luck too. ``shared``
seeds (every task draws the same noises, the protocol before 2026-12-05) make tasks correlated: on the
gaussian-mixture testbed a noise seed's luck was 75-85% of the pool's variance and the CIs over tasks were too
narrow. Everything lives in one run store, so a repeated compare regenerates nothing already done.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from eacps import plugins
from eacps.analysis.stats import N_BOOT, percentile_interval, task_weights, weighted_mean
from eacps.api import check_runnable, load_run, make_strategy
from eacps.config import ConfigError, RunConfig, SearchConfig, stored_difference
from eacps.cost import figure, unit_costs
from eacps.engine.engine import Engine, Job, SearchResult
from eacps.orderstats import expected_max_curve, expected_max_std_normal, invert_curves
from eacps.store import POOL, SAMPLER_POOL, Store, read_only
from eacps.strategy import SamplerSchedule, Strategy
from eacps.tables import gap_text, multiplier_text
from eacps.types import Status

REFERENCE = "best-of-n"
# POOL (eacps.store): the reference pool's label: feeds N* and the curve, never a contestant
#: The pool's strategy seed. Contestants use seeds < 2^32 (``seed_offset + r``), so ``SeedStream(POOL_SEED)``
#: shares no stream with any of them (best-of-N at seed r draws from ``SeedStream(r)``).
POOL_SEED = 2**32 + 0x5EED
#: Default pool: 16x the largest budget (resolves multipliers up to about 16x there, more at smaller budgets),
#: capped at 1024 per task (beyond that the pool dominates the cost of a compare).
POOL_PER_BUDGET, POOL_CAP = 16, 1024
#: The same-sampler baselines: per branch schedule, a pool of ``branched-best-of-n`` samples (random paths with the
#: schedule's renoise branches, no selection) under the reference pool's strategy seed: the same root seeds as the
#: reference pool (paired: the two pools differ by the branch moves alone), branch seeds from its own local stream,
#: so no contestant shares a stream with it. Their label, SAMPLER_POOL, lives in eacps.store with POOL.
SAMPLER = "branched-best-of-n"
MIN_TASKS, MIN_REPEATS = 10, 4  # below these a figure gets a warning
# N_BOOT (eacps.analysis.stats): the bootstrap replicates, shared with the summaries so a number has one CI


@dataclass
class Contestant:
    label: str
    strategy: str
    params: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 8
    max_steps: int | None = None

    def settings(self) -> dict[str, Any]:
        """What makes this label's results: stored per run directory, a label may not change it."""
        return {"strategy": self.strategy, "params": self.params, "max_steps": self.max_steps}


SEED_MODES = ("per-task", "shared")

def _hash32(*parts: object) -> int:
    """A stable 32-bit hash of ``parts`` (blake2b: the same on every machine and Python, unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b("\0".join(map(str, parts)).encode(), digest_size=4).digest(), "big")


@dataclass(frozen=True)
class Split:
    """Which tasks and seeds a compare reports on. The config's conditions split in order: the first
    ``tune_tasks`` form the tuning split, the rest the evaluation split; ``report`` picks the one to run
    and report. Strategy seeds are ``seed_offset + r`` for r < repeats; with ``seeds = "per-task"`` (default)
    each task runs seed r under its own seed (``strategy_seed``) and draws its own pool (``pool_seed``), with
    ``"shared"`` every task runs seed r itself and the pool ``POOL_SEED``."""

    tune_tasks: int = 0
    report: Literal["evaluation", "tuning"] = "evaluation"
    seed_offset: int = 0
    seeds: Literal["per-task", "shared"] = "per-task"

    def strategy_seed(self, task: str, seed: int) -> int:
        """The seed a contestant runs on ``task`` for strategy seed ``seed``: under per-task seeds a hash of
        both in [0, 2^32) (contestants on one task and seed share it: common random numbers within a task,
        none across tasks); under shared seeds ``seed`` itself."""
        return seed if self.seeds == "shared" else _hash32("eacps-compare", task, seed)

    def pool_seed(self, task: str) -> int:
        """The seed of ``task``'s reference pool (and its same-sampler pools: paired roots), >= 2^32 so that it
        shares no stream with a contestant (whose seeds are < 2^32)."""
        return POOL_SEED if self.seeds == "shared" else 2**32 + _hash32("eacps-compare-pool", task)

    def id_suffix(self) -> str:
        """Appended to per-task searches' ids, so a store never resumes a search drawn under the other mode."""
        return "" if self.seeds == "shared" else "/per-task"

    def search_id(self, task: str, label: str, budget: int, seed: int) -> str:
        """A contestant's search of ``task`` at ``budget``, strategy seed ``seed``: e.g. ``t0/fk/B20/r3/per-task``."""
        return f"{task}/{label}/B{budget}/r{seed}{self.id_suffix()}"

    def select(self, conditions: list) -> list:
        if self.report not in ("evaluation", "tuning"):
            raise ConfigError(f"--split: {self.report!r}; allowed: evaluation, tuning")
        if self.seeds not in SEED_MODES:
            raise ConfigError(f"--seed-mode: {self.seeds!r}; allowed: {', '.join(SEED_MODES)}")
        if not 0 <= self.tune_tasks <= len(conditions):
            raise ConfigError(f"--tune-tasks: must be between 0 and the config's {len(conditions)} conditions, "
                              f"got {self.tune_tasks}")
        chosen = conditions[:self.tune_tasks] if self.report == "tuning" else conditions[self.tune_tasks:]
        if not chosen:
            raise ConfigError(f"--tune-tasks: {self.tune_tasks} leaves the {self.report} split empty "
                              f"({len(conditions)} conditions)")
        return chosen


def parse_contestants(spec: str, cfg: RunConfig | None = None) -> list[Contestant]:
    """Comma-separated labels of the config's searches or registered strategy names. A label takes its
    entry's params, batch_size and max_steps; a bare name default params and ``[search]``'s settings."""
    real = cfg is not None and (cfg.searches or cfg.search is not None)
    entries = {s.label or s.strategy: s for s in cfg.all_searches()} if real else {}
    base = cfg.search if cfg is not None and cfg.search is not None else SearchConfig()
    out = []
    for item in [x.strip() for x in spec.split(",") if x.strip()]:
        if item in entries:
            s = entries[item]
            out.append(Contestant(item, s.strategy, dict(s.params), s.batch_size, s.max_steps))
            continue
        try:
            plugins.get("strategy", item)
        except (plugins.UnknownPluginError, plugins.PluginLoadError) as exc:
            labels = f"; config labels: {', '.join(entries)}" if entries else ""
            raise ConfigError(f"--strategies: {exc}{labels}") from None
        out.append(Contestant(item, item, {}, base.batch_size, base.max_steps))
    if not out:
        raise ConfigError("--strategies: give at least one strategy")
    if len({c.label for c in out}) != len(out):
        raise ConfigError("--strategies: each strategy once")
    return out


def parse_budgets(spec: str) -> list[int]:
    try:
        budgets = sorted({int(x) for x in spec.split(",") if x.strip()})
    except ValueError:
        raise ConfigError(f"--budgets: comma-separated positive integers, got {spec!r}") from None
    if not budgets or budgets[0] < 1:
        raise ConfigError(f"--budgets: comma-separated positive integers, got {spec!r}")
    return budgets


def shared_prior_seed(cfg: RunConfig) -> int:
    """The one prior seed of the config's searches: the potential scores against the prior, so searches
    with different priors optimize different potentials and cannot be compared or pooled."""
    seeds = [s.prior_seed for s in cfg.all_searches()]
    for i, s in enumerate(seeds):
        if s != seeds[0]:
            raise ConfigError(f"searches.{i}.prior_seed: compare and landscape need one prior seed for every "
                              f"search (the potential scores against the prior); got {seeds[0]} and {s}")
    return seeds[0]


def default_pool(budgets: list[int]) -> int:
    return min(POOL_CAP, POOL_PER_BUDGET * max(budgets))


def check_run_dir(out: Path, cfg: RunConfig, labels: dict[str, dict[str, Any]] | None = None,
                  added: dict[str, dict[str, Any]] | None = None) -> None:
    """Refuse (read-only, before any compute) a run directory that holds results of another config (compared
    normalized, without its searches: a compare may add strategies to a directory), or a label that was run
    there with other settings: their results would mix. Settings carry the strategy's parameters resolved with
    their defaults (``resolved``), so a label whose default changed between versions is refused too, and one whose
    parameters are spelled otherwise but resolve alike (a default given explicitly) is the same search. A parameter
    the strategy gained after the label ran is the same search too at the value that does what the strategy did
    before it (``added``: per label, its parameters class's ``added``), and another search at any other value."""
    if not (out / "store.sqlite").exists():
        return
    ro = read_only(out)
    try:
        stored = [ro.get_meta("config"), (ro.get_meta("compare") or {}).get("config"),
                  (ro.get_meta("landscape") or {}).get("config")]
        old_labels = ro.get_meta("compare/contestants") or {}
    finally:
        ro.close()
    for s in stored:
        if s is not None and (diff := stored_difference(s, cfg, searches=False)) is not None:
            raise ConfigError(f"--out: {out} holds results of a different config (first difference: {diff}); "
                              "use another directory")
    for label, settings in (labels or {}).items():
        old = old_labels.get(label)
        if old is not None and ("resolved" not in old or "resolved" not in settings):  # a store from before
            old, settings = ({k: v for k, v in d.items() if k != "resolved"} for d in (old, settings))
        elif old is not None:  # what ran is the resolved parameters: a default spelled out is the same search
            old, settings = ({k: v for k, v in d.items() if k != "params"} for d in (old, settings))
            before = (added or {}).get(label, {})
            settings = {**settings, "resolved": {k: v for k, v in settings["resolved"].items()
                                                 if k in old["resolved"] or k not in before or before[k] != v}}
        if old is not None and old != settings:
            raise ConfigError(f"--strategies: {label!r} was run in {out} with other settings "
                              f"({json.dumps(old_labels[label])}); use another label or directory")


def run_compare(config: str | Path, out: str | Path, *, strategies: str, budgets: str, repeats: int = MIN_REPEATS,
                pool: int | None = None, split: Split = Split(), scorer_cost: float = 1.0,
                progress: bool = False) -> dict[str, Any]:
    """Run and analyze a comparison; writes ``out/compare.json``. ``pool=None`` draws the default reference
    pool (see ``default_pool``); 0 draws none (then no multipliers)."""
    if repeats < 1:
        raise ConfigError(f"--repeats: must be >= 1, got {repeats}")
    if pool is not None and pool < 0:
        raise ConfigError(f"--pool: must be >= 0, got {pool}")
    if not (math.isfinite(scorer_cost) and scorer_cost >= 0):
        raise ConfigError(f"--scorer-cost: a finite number >= 0 (generations per potential evaluation), "
                          f"got {scorer_cost}")
    if not 0 <= split.seed_offset <= 2**32 - repeats:
        raise ConfigError(f"--seed-offset: between 0 and 2^32 - repeats, got {split.seed_offset}")
    setup = load_run(config, progress=progress)
    cfg, generator, potential, conditions, _ = setup
    contestants = parse_contestants(strategies, cfg)
    bs = parse_budgets(budgets)
    prior_seed = shared_prior_seed(cfg)
    tasks = split.select(conditions)
    n_pool = default_pool(bs) if pool is None else pool
    seeds = [split.seed_offset + r for r in range(repeats)]
    built: dict[tuple[str, int], Strategy] = {}  # per (label, budget); read again for the branch schedules
    for c in contestants:  # validate every (strategy, budget) before computing anything
        for b in bs:
            strat = built[(c.label, b)] = make_strategy(c.strategy, c.params, budget=b, seed=seeds[0])
            check_runnable(strat, generator, c.max_steps, where=f"--strategies: {c.label}",
                           max_steps_field=f"--strategies: {c.label}: max_steps")
    out = Path(out)
    settings = {c.label: {**c.settings(), "resolved": built[(c.label, bs[0])].params.model_dump(mode="json")}
                for c in contestants}
    check_run_dir(out, cfg, settings, {c.label: type(built[(c.label, bs[0])].params).added for c in contestants})
    protocol = {"reported": split.report, "tuning_tasks": [c.id for c in conditions[:split.tune_tasks]],
                "evaluation_tasks": [c.id for c in conditions[split.tune_tasks:]], "strategy_seeds": seeds,
                "seeds": split.seeds, "pool": {"size": n_pool, "strategy": REFERENCE,
                                               "seeds": {c.id: split.pool_seed(c.id) for c in tasks},
                                               **({"seed": POOL_SEED} if split.seeds == "shared" else {})},
                "prior_seed": prior_seed}
    with Store.open(out, argv=["compare", str(config)]) as store:
        store.set_meta("compare", {"config": cfg.model_dump(mode="json"), "strategies": strategies,
                                   "budgets": bs, "repeats": repeats, "protocol": protocol})
        store.set_meta("compare/contestants", {**(store.get_meta("compare/contestants") or {}), **settings})

        engines: list[Engine] = []

        def engine_for(batch_size: int, max_steps: int | None) -> Engine:
            engines.append(setup.engine(store, batch_size=batch_size, max_steps=max_steps, progress=progress))
            return engines[-1]

        pools = _run_pool(engine_for, tasks, n_pool, prior_seed, contestants, split)
        schedules = sampler_schedules(built, generator.default_steps)
        sampler_pools = _run_sampler_pools(engine_for, tasks, n_pool, prior_seed, schedules, contestants, split)
        records = _run_contestants(engine_for, tasks, contestants, bs, seeds, prior_seed, split)
        unit = unit_costs(store, cfg.cost)
        generated = sum(e.generated for e in engines)  # the cost meters' count: skipped batches are not
    summary = analyze(records, pools, [c.label for c in contestants], bs, unit, full_steps=generator.default_steps,
                      criteria=[c.name for c in potential.criteria], scorer_cost=scorer_cost,
                      schedules=schedules, sampler_pools=sampler_pools,
                      optima=optima_of(generator, potential, tasks) if n_pool else None)
    summary["protocol"] = {**protocol, "sampler_pool": {"strategy": SAMPLER, "seeds": "the reference pool's",
                                                        "size": n_pool,
                                                        "schedules": sorted({s.label for s in schedules.values()})}}
    summary["prior"] = {"seed": prior_seed, "steps": generator.default_steps, "evaluations": 1,
                        "calibration_samples": potential.calibration_samples if potential.standardizes else 0}
    summary["warnings"] = warnings(summary, repeats, split)
    summary["generated"] = generated  # computed by this invocation (0 when everything was in the store)
    summary["searches"] = records
    summary["pool_samples"] = pools
    summary["sampler_pool_samples"] = sampler_pools
    (out / "compare.json").write_text(json.dumps(summary, indent=2))
    return summary


EngineFor = Callable[[int, int | None], Engine]  # (batch_size, max_steps) -> an engine on the compare's store


def _run_pool(engine_for: EngineFor, tasks: list, n_pool: int, prior_seed: int,
              contestants: list[Contestant], split: Split) -> dict[str, list[float]]:
    """Per task, ``n_pool`` best-of-N samples from the pool's own seed stream (potentials in asked order)."""
    if not n_pool:
        return {}
    ref = [c.batch_size for c in contestants if c.strategy == REFERENCE]
    engine = engine_for(ref[0] if ref else min(c.batch_size for c in contestants), None)
    try:
        results = engine.run_all([Job(cond, make_strategy(REFERENCE, {}, budget=n_pool,
                                                          seed=split.pool_seed(cond.id)),
                                      label=POOL, search_id=f"{cond.id}/{POOL}/N{n_pool}{split.id_suffix()}",
                                      prior_seed=prior_seed) for cond in tasks])
    finally:
        engine.close()
    return _pool_potentials(results)


def _pool_potentials(results: list[SearchResult]) -> dict[str, list[float]]:
    """Per task, the potentials of a pool's OK full candidates in asked order."""
    return {res.condition.id: [h.potential for h in res.history if h.potential is not None
                               and h.status is Status.OK and not h.recipe.is_preview] for res in results}


def sampler_schedules(strategies: dict[tuple[str, int], Strategy],
                      full_steps: int) -> dict[tuple[str, int], SamplerSchedule]:
    """Per (label, budget) of a contestant's fresh strategy whose paths branch: the branch schedule it declares
    (``Strategy.sampler_schedule()``, bound to the generator's T), never guessed from its name."""
    out = {}
    for key, strat in strategies.items():
        sched = strat.bind(full_steps).sampler_schedule()
        if sched is not None and sched.steps:
            out[key] = sched
    return out


def sampler_pool_strategy(schedule: SamplerSchedule, n_pool: int, seed: int = POOL_SEED) -> Strategy:
    """The same-sampler pool of one schedule: ``n_pool`` random paths with exactly its branches, no selection,
    under the task's reference-pool ``seed`` (paired roots)."""
    return make_strategy(SAMPLER, schedule.params(), budget=n_pool, seed=seed)


def sampler_pool_id(task: str, schedule: SamplerSchedule, n_pool: int, suffix: str = "") -> str:
    """The search id of a task's same-sampler pool, e.g. ``t0/sampler-pool/b5-0.7_8-0.7/N128/per-task``."""
    slug = "_".join(f"b{k}-{t:.4g}" for k, t in zip(schedule.steps, schedule.thetas, strict=True))
    return f"{task}/{SAMPLER_POOL}/{slug}/N{n_pool}{suffix}"


def _run_sampler_pools(engine_for: EngineFor, tasks: list, n_pool: int, prior_seed: int,
                       schedules: dict[tuple[str, int], SamplerSchedule],
                       contestants: list[Contestant], split: Split) -> dict[str, dict[str, list[float]]]:
    """Per distinct schedule (by label), per task: ``n_pool`` samples of random branched paths (potentials in
    asked order)."""
    distinct = {s.label: s for s in schedules.values()}
    if not n_pool or not distinct:
        return {}
    engine = engine_for(min(c.batch_size for c in contestants), None)
    out: dict[str, dict[str, list[float]]] = {}
    try:
        for label, sched in distinct.items():
            results = engine.run_all([Job(cond, sampler_pool_strategy(sched, n_pool, split.pool_seed(cond.id)),
                                          label=SAMPLER_POOL, prior_seed=prior_seed,
                                          search_id=sampler_pool_id(cond.id, sched, n_pool, split.id_suffix()))
                                      for cond in tasks])
            out[label] = _pool_potentials(results)
    finally:
        engine.close()
    return out


def _run_contestants(engine_for: EngineFor, tasks: list, contestants: list[Contestant], budgets: list[int],
                     seeds: list[int], prior_seed: int, split: Split) -> list[dict[str, Any]]:
    records = []
    for c in contestants:
        engine = engine_for(c.batch_size, c.max_steps)
        try:
            for b in budgets:
                for r, seed in enumerate(seeds):
                    jobs = [Job(cond, make_strategy(c.strategy, c.params, budget=b,
                                                    seed=split.strategy_seed(cond.id, seed)), label=c.label,
                                search_id=split.search_id(cond.id, c.label, b, seed), prior_seed=prior_seed)
                            for cond in tasks]
                    records += [search_record(res, c.label, b, r, seed, split) for res in engine.run_all(jobs)]
        finally:
            engine.close()
    return records


def evaluations(res: SearchResult) -> int:
    """Potential evaluations charged to a search (previews included): candidates that reached the scorers."""
    charged = getattr(res.cost, "evaluations", None)
    if charged is not None:
        return int(charged)
    return sum(1 for h in res.history if h.image_path is not None and h.status is not Status.FILTERED)


def search_record(res: SearchResult, label: str, budget: int, repeat: int, seed: int,
                  split: Split = Split(seeds="shared")) -> dict[str, Any]:
    """One search's figures; ``seed`` the strategy seed (``seed_offset + repeat``), ``strategy_seed`` the one it ran
    under on its task (``split.strategy_seed``) and ``search_id`` its id in the store."""
    task = res.condition.id
    return {"strategy": label, "budget": budget, "repeat": repeat, "seed": seed,
            "strategy_seed": split.strategy_seed(task, seed), "search_id": split.search_id(task, label, budget, seed),
            "task": task,
            "best": None if res.best is None else res.best.potential,
            "prior": res.prior.potential, "candidates": res.cost.candidates, "steps": res.cost.steps,
            "scorer_calls": dict(res.cost.scorer_calls), "evaluations": evaluations(res),
            "value_seconds": res.cost.value_seconds,
            "stop": {k: v for k, v in res.stop.items() if isinstance(v, int | float | str)},
            "diagnostics": res.diagnostics}


# -- analysis -----------------------------------------------------------------------------------------


def cost_models(unit: dict[str, Any], full_steps: int, criteria: list[str], scorer_cost: float) -> dict[str, Any]:
    """Per cost model, a function (steps, calls, evaluations, value seconds) -> best-of-N-candidate equivalents. The
    measured model charges a value model's measured seconds too; the scorer-cost model counts generations and
    evaluations only."""
    one = figure(full_steps, dict.fromkeys(criteria, 1), unit)
    models: dict[str, Any] = {}
    if one:
        models["measured"] = lambda s, calls, e, v=0.0: (figure(s, calls, unit) + v) / one
    k = scorer_cost
    models[f"scorer_cost={k:g}"] = lambda s, calls, e, v=0.0: (s / full_steps + k * e) / (1 + k)
    return models


def _per_task(records: list[dict], tasks: list[str]) -> dict[str, Any]:
    """Per task (mean over seeds): best (NaN when no seed found one), steps, evaluations, calls, value seconds."""
    by: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by[r["task"]].append(r)
    best = np.full(len(tasks), np.nan)
    steps, evals, value = np.zeros(len(tasks)), np.zeros(len(tasks)), np.zeros(len(tasks))
    calls: list[dict[str, float]] = []
    for i, t in enumerate(tasks):
        rs = by.get(t, [])
        ok = [r["best"] for r in rs if r["best"] is not None]
        best[i] = np.mean(ok) if ok else np.nan
        steps[i] = np.mean([r["steps"] for r in rs]) if rs else np.nan
        evals[i] = np.mean([r["evaluations"] for r in rs]) if rs else np.nan
        value[i] = np.mean([r.get("value_seconds", 0.0) for r in rs]) if rs else np.nan
        c: dict[str, float] = defaultdict(float)
        for r in rs:
            for k, v in r["scorer_calls"].items():
                c[k] += v / len(rs)
        calls.append(dict(c))
    return {"best": best, "steps": steps, "evaluations": evals, "calls": calls, "value_seconds": value}


def _multiplier(curves: np.ndarray, means: np.ndarray, eq: np.ndarray, m: int) -> dict[str, Any]:
    """N* and N*/cost; row 0 of every array is the point estimate, the rest bootstrap replicates."""
    n_star = invert_curves(curves, means)
    mult = n_star / eq
    bound = "<=" if n_star[0] <= 1.0 else (">" if math.isinf(n_star[0]) else "=")
    lo, hi = percentile_interval(mult[1:])
    nlo, nhi = percentile_interval(n_star[1:])
    fin = lambda x: None if math.isinf(x) or math.isnan(x) else float(x)  # noqa: E731 - JSON has no inf
    return {"equivalents": float(eq[0]), "n_star": float(min(n_star[0], m)), "n_star_ci95": [fin(nlo), fin(nhi)],
            "multiplier": float(min(n_star[0], m) / eq[0]), "bound": bound, "ci95": [fin(lo), fin(hi)],
            "pool": m}


def _equivalents(t: dict[str, Any], w: np.ndarray, f: Callable) -> np.ndarray:
    """Mean charged cost in best-of-N-candidate equivalents under cost model ``f`` (tasks with a best only)."""
    value = t.get("value_seconds", np.zeros(len(t["steps"])))
    eq_t = np.array([f(s, c, e, v) if ok else np.nan for s, c, e, v, ok in
                     zip(t["steps"], t["calls"], t["evaluations"], value, ~np.isnan(t["best"]), strict=True)])
    return weighted_mean(w, eq_t)


def _row(label: str, b: int, t: dict[str, Any], ref: dict[str, Any] | None, w: np.ndarray,
         curves_of, models: dict[str, Any], m: int) -> dict[str, Any]:
    means = weighted_mean(w, t["best"])
    n = int(np.sum(~np.isnan(t["best"])))
    steps, evals = float(np.nanmean(t["steps"])), float(np.nanmean(t["evaluations"]))
    calls = {k: float(np.mean([c.get(k, 0.0) for c in t["calls"]])) for k in {k for c in t["calls"] for k in c}}
    row: dict[str, Any] = {
        "strategy": label, "budget": b, "n_tasks": n, "mean_best": None if n == 0 else float(means[0]),
        "ci95": list(percentile_interval(means[1:])), "steps": steps, "evaluations": evals,
        "scorer_calls": {k: round(v, 3) for k, v in calls.items()},
        "value_seconds": float(np.nanmean(t["value_seconds"])) if "value_seconds" in t else 0.0}
    if ref is not None:
        d = weighted_mean(w, t["best"] - ref["best"])
        if not np.isnan(d[0]):
            row["diff_vs_best_of_n"], row["diff_ci95"] = float(d[0]), list(percentile_interval(d[1:]))
    if curves_of is not None and n:
        curves = curves_of(~np.isnan(t["best"]))
        row["multipliers"] = {}
        for name, f in models.items():
            row["multipliers"][name] = _multiplier(curves, means, _equivalents(t, w, f), m)
        row["multiplier"] = next(iter(row["multipliers"].values()))  # the run's own cost model first
    return row


def analyze(records: list[dict], pools: dict[str, list[float]], labels: list[str], budgets: list[int],
            unit: dict[str, Any], *, full_steps: int, criteria: list[str], scorer_cost: float = 1.0,
            n_boot: int = N_BOOT, seed: int = 0, schedules: dict[tuple[str, int], SamplerSchedule] | None = None,
            sampler_pools: dict[str, dict[str, list[float]]] | None = None,
            optima: dict[str, float] | None = None) -> dict[str, Any]:
    """The comparison's figures from per-search records and per-task pools (potentials in asked order);
    ``schedules`` and ``sampler_pools`` (per schedule label) add each branching row's same-sampler baseline;
    with ``optima`` (per task, the generator's known optimum) each row's gap to it too (``add_optimum``)."""
    tasks = sorted({r["task"] for r in records})
    w = np.vstack([np.ones(len(tasks)), task_weights(len(tasks), n_boot=n_boot, seed=seed)])
    pooled = bool(tasks) and all(len(pools.get(t, [])) >= 2 for t in tasks)
    m = min(len(pools[t]) for t in tasks) if pooled else 0
    curves_of = None
    if pooled:  # the first m samples of every task's pool (asked order is random): unbiased U-statistics
        big_f = np.stack([expected_max_curve(pools[t][:m]) for t in tasks])
        curves_of = lambda ok: (w * ok) @ big_f / (w * ok).sum(axis=1, keepdims=True)  # noqa: E731
    models = cost_models(unit, full_steps, criteria, scorer_cost)
    per = {(lab, b): _per_task([r for r in records if r["strategy"] == lab and r["budget"] == b], tasks)
           for lab in labels for b in budgets}
    table = []
    for label in labels:
        for b in budgets:
            ref = per.get((REFERENCE, b)) if label != REFERENCE else None
            row = _row(label, b, per[(label, b)], ref, w, curves_of, models, m)
            diag = _diagnostics([r for r in records if r["strategy"] == label and r["budget"] == b])
            secs = figure(row["steps"], row["scorer_calls"], unit)  # and a value model's measured seconds
            row["cost_seconds"] = None if secs is None else secs + row["value_seconds"]
            if diag:  # e.g. multi-fidelity's preview_rank_spearman, averaged over searches
                row["diagnostics"] = diag
            sched = (schedules or {}).get((label, b))
            if sched is not None and pooled and sched.label in (sampler_pools or {}):
                row["same_sampler"] = same_sampler(per[(label, b)], sched, sampler_pools[sched.label],  # type: ignore[index]
                                                   pools, tasks, w, models, m)
            table.append(row)
    summary = {
        "tasks": len(tasks), "budgets": budgets, "strategies": labels, "table": table, "full_steps": full_steps,
        "repeats": len({r["seed"] for r in records}) if records else 0, "bootstrap": {"replicates": n_boot,
                                                                                       "seed": seed},
        "cost_model": {**unit, "note": "single figure = steps x seconds_per_step + sum over criteria of calls x "
                       "seconds_per_call; one best-of-N candidate = T steps + one call per criterion"},
        "cost_models": list(models), "scorer_cost": scorer_cost,
        "pool": {"size": m, "tasks": len(tasks) if pooled else 0},
        "best_of_n_curve": _curve(pools, tasks, m, budgets),
    }
    if optima and pooled and all(t in optima for t in tasks):
        add_optimum(summary, per, tasks, w, big_f, optima)
    return summary


def crossed_mean(x: np.ndarray, w: np.ndarray, *, seed: int) -> np.ndarray:
    """Mean of ``x`` (tasks x pool positions) per replicate: row 0 the point estimate, then a bootstrap that
    resamples tasks (``w``, the compare's own task weights) *and* pool positions jointly (a product bootstrap for
    crossed factors; conservative). Under shared seeds positions must be resampled too: every task's pool draws
    the same root seeds in the same order (and a branch pool the same branch seeds), so a position is a random
    effect shared by all tasks, which resampling tasks alone ignores: on digits it gave a move whose true effect
    is zero -0.51 [-0.70, -0.33]. Under per-task seeds positions are independent and resampling them too is
    merely conservative."""
    k = x.shape[1]
    v = np.vstack([np.ones(k), task_weights(k, n_boot=len(w) - 1, seed=seed)])
    per_task = x @ v.T / v.sum(axis=1)  # tasks x replicates
    return (w * per_task.T).sum(axis=1) / w.sum(axis=1)


def same_sampler(t: dict[str, Any], schedule: SamplerSchedule, spool: dict[str, list[float]],
                 pools: dict[str, list[float]], tasks: list[str], w: np.ndarray, models: dict[str, Any],
                 m: int) -> dict[str, Any]:
    """A branching row against best-of-N of random paths with its own branch schedule (``spool``: per task, those
    paths' potentials), and the sampler effect alone: per task, the mean potential of the random branched paths
    minus that of the vanilla pool (their first k samples each, k the smaller pool; the roots are shared, so the
    difference is paired per position), with a bootstrap over tasks and positions (``crossed_mean``)."""
    out: dict[str, Any] = {"schedule": {"steps": list(schedule.steps), "thetas": list(schedule.thetas),
                                        "label": schedule.label}}
    if not all(len(spool.get(task, [])) >= 2 for task in tasks):
        out["note"] = "a task has fewer than 2 samples of this sampler: no baseline"
        return out
    ms = min(len(spool[task]) for task in tasks)
    k = min(ms, m)
    diffs = np.array([np.subtract(spool[task][:k], pools[task][:k]) for task in tasks])
    effect = crossed_mean(diffs, w, seed=len(w))
    out.update(pool=ms, effect=float(effect[0]), effect_ci95=list(percentile_interval(effect[1:])))
    big_f = np.stack([expected_max_curve(spool[task][:ms]) for task in tasks])
    ok = ~np.isnan(t["best"])
    curves = (w * ok) @ big_f / (w * ok).sum(axis=1, keepdims=True)
    means = weighted_mean(w, t["best"])
    if np.isnan(means[0]):
        return out
    out["multipliers"] = {name: _multiplier(curves, means, _equivalents(t, w, f), ms) for name, f in models.items()}
    out["multiplier"] = next(iter(out["multipliers"].values()))
    return out


def _diagnostics(recs: list[dict]) -> dict[str, float]:
    numeric = defaultdict(list)
    for r in recs:
        for k, v in (r.get("diagnostics") or {}).items():
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                numeric[k].append(float(v))
    return {k: float(np.mean(v)) for k, v in numeric.items()}


def _curve(pools: dict[str, list[float]], tasks: list[str], m: int, budgets: list[int]) -> dict[str, list[float]]:
    """The best-of-N curve of the pool: empirical (exact U-statistic), a normal fit's exact E[max], and the
    write-up's mu + sigma sqrt(2 ln N), averaged over tasks."""
    ns = [n for n in sorted({1, 2, *budgets, *(2**k for k in range(1, 11))}) if n <= m]
    if not ns:
        return {"n": []}
    xs = [np.asarray(pools[t][:m], dtype=float) for t in tasks]
    emp = np.mean([expected_max_curve(x)[np.array(ns) - 1] for x in xs], axis=0)
    mu, sd = np.array([x.mean() for x in xs]), np.array([x.std(ddof=1) for x in xs])
    norm = [float(np.mean(mu + sd * expected_max_std_normal(n))) for n in ns]
    approx = [float(np.mean(mu + sd * math.sqrt(2 * math.log(n)))) for n in ns]
    return {"n": ns, "empirical": [float(v) for v in emp], "normal_exact": norm, "writeup_approx": approx}


def compute_multiplier(samples_by_task: dict[str, list[float]], target: float, equivalents: float) -> dict[str, Any]:
    """Point estimate: N* at which best-of-N (the tasks' pools, the first m samples each) reaches ``target``,
    and N*/``equivalents``. ``bound``: '=' resolved, '<=' at or below N = 1, '>' beyond the pool."""
    m = min(len(v) for v in samples_by_task.values())
    curve = np.mean([expected_max_curve(v[:m]) for v in samples_by_task.values()], axis=0)
    n_star = float(invert_curves(curve[None, :], np.array([target]))[0])
    bound = "<=" if n_star <= 1.0 else (">" if math.isinf(n_star) else "=")
    return {"n_star": min(n_star, m), "multiplier": min(n_star, m) / equivalents, "bound": bound}


# -- the gap to a known optimum (generators that know theirs: ``Generator.optimum``) --------------------------


def optima_of(generator: Any, potential: Any, tasks: list) -> dict[str, float] | None:
    """Per task id, the generator's known optimum of ``potential`` (``Generator.optimum``); None unless every
    task has a finite one."""
    fn = getattr(generator, "optimum", None)
    if not callable(fn):
        return None
    out = {}
    for cond in tasks:
        v = fn(cond, potential)
        if v is None or not math.isfinite(float(v)):
            return None
        out[cond.id] = float(v)
    return out


def gap_fraction(w: np.ndarray, best: np.ndarray, best_of_1: np.ndarray, opt: np.ndarray) -> np.ndarray:
    """Per replicate (row of ``w``), the fraction of the gap from best-of-1 to the optimum closed, over the tasks
    where ``best`` is known: sum w·(best - best_of_1) / sum w·(opt - best_of_1) (a ratio of task sums)."""
    ok = ~np.isnan(best)
    wm = w * ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return (wm @ np.where(ok, best - best_of_1, 0.0)) / (wm @ (opt - best_of_1))


def add_optimum(summary: dict[str, Any], per: dict[tuple[str, int], dict[str, Any]], tasks: list[str],
                w: np.ndarray, curves: np.ndarray, optima: dict[str, float]) -> None:
    """Beside each row's multiplier, ``optimum_gap``: the fraction of the gap between best-of-1 (the mean of
    the task's reference pool) and the optimum that the strategy closes, with a paired bootstrap 95% CI over
    tasks (the table's replicates); ``summary["optimum"]``: the optima, and best-of-N's own fraction for every
    N the pool resolves (exact order statistics of the pool: the U-statistic E[max of N]). ``analyze``'s own
    figures: ``per`` (label, budget) -> per-task figures, the task weights ``w``, and ``curves``, per task the
    expected max of N of its first m pool samples (every task has an optimum and a pool of m >= 2)."""
    m = curves.shape[1]
    b1, opt = curves[:, 0], np.array([optima[t] for t in tasks])
    for row in summary["table"]:
        frac = gap_fraction(w, per[(row["strategy"], row["budget"])]["best"], b1, opt)
        if not np.isnan(frac[0]):
            row["optimum_gap"] = {"fraction": float(frac[0]), "ci95": list(percentile_interval(frac[1:]))}
    ns = [n for n in sorted({1, 2, *summary["budgets"], *(2**k for k in range(1, 11))}) if n <= m]
    summary["optimum"] = {
        "per_task": {t: optima[t] for t in tasks}, "mean": float(opt.mean()), "best_of_1": float(b1.mean()),
        "best_of_n": {"n": ns, "fraction": [float(gap_fraction(w[:1], curves[:, n - 1], b1, opt)[0]) for n in ns]}}


def warnings(summary: dict[str, Any], repeats: int, split: Split) -> list[str]:
    out = []
    if summary["tasks"] < MIN_TASKS:
        out.append(f"only {summary['tasks']} tasks: a 95% CI over tasks needs about {MIN_TASKS} or more to mean "
                   "much; treat every interval here as rough")
    if repeats < MIN_REPEATS:
        out.append(f"{repeats} seed(s) per strategy: use --repeats {MIN_REPEATS} or more before claiming a ranking")
    pool, top = summary["pool"]["size"], max(summary["budgets"], default=1)
    if not pool:
        out.append("no reference pool: no multipliers (use --pool, default 16x the largest budget)")
    elif pool < 4 * top:
        out.append(f"a reference pool of {pool} per task resolves multipliers only up to {pool / top:.1f}x at "
                   f"budget {top} (default: {POOL_PER_BUDGET}x the largest budget)")
    if split.report == "evaluation" and split.tune_tasks == 0 and split.seed_offset == 0:
        out.append("no tuning split (--tune-tasks) and no --seed-offset: if any parameter was chosen on these "
                   "tasks and seeds, the figures carry a winner's curse")
    if split.report == "tuning":
        out.append("these figures come from the tuning split: use them to choose parameters, not to claim")
    return out


# -- text ---------------------------------------------------------------------------------------------


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def _header(summary: dict[str, Any]) -> list[str]:
    p = summary.get("protocol", {})
    u = summary["cost_model"]
    per_call = ", ".join(f"{k} {v:.2e} s" for k, v in u.get("seconds_per_call", {}).items())
    seeds = p.get("strategy_seeds", [])
    mode = p.get("seeds", "shared" if p else None)  # compare.json files before per-task seeds: shared
    tune = len(p.get("tuning_tasks", []))
    lines = [f"{p.get('reported', 'evaluation')} split: {summary['tasks']} tasks"
             + (f" (tuning split: {tune} tasks, not reported here)" if tune and p.get("reported") != "tuning" else "")
             + (f"; strategy seeds {seeds[0]}..{seeds[-1]}" if seeds else "")
             + ("; shared by every task (tasks correlated: CIs over tasks too narrow)" if mode == "shared" else
                "; each task runs them under its own seeds" if mode == "per-task" else ""),
             f"reference pool: {summary['pool']['size']} best-of-N samples per task on its own seed stream "
             + (f"(seed {p['pool']['seed']}), " if "seed" in p.get("pool", {}) else
                "(one per task), " if mode == "per-task" else "")
             + "never a contestant; '>pool': N* beyond the pool",
             f"cost (a) {u.get('kind')}: {_fmt(u.get('seconds_per_step'), '.2e')} s/step; per scorer call: "
             f"{per_call or '-'}; (b) one potential evaluation costs {summary.get('scorer_cost', 1):g} generation(s); "
             "both in best-of-N-candidate equivalents (one = T steps + 1 potential evaluation)"]
    if "prior" in summary:
        pr = summary["prior"]
        cal = f" + {pr['calibration_samples']} calibration samples" if pr["calibration_samples"] else ""
        lines.append(f"stage-0 prior (seed {pr['seed']}): charged to each task once, {pr['steps']} steps + 1 "
                     f"evaluation{cal}, the same for every strategy and the pool; not in the multipliers")
    return lines


def format_compare(summary: dict[str, Any]) -> str:
    names = summary.get("cost_models", ["measured"])
    lines = _header(summary)
    opt = summary.get("optimum")
    if opt:
        lines.append(f"optimum: the generator's known optimum per task (mean {opt['mean']:.3f}; best-of-1 "
                     f"{opt['best_of_1']:.3f}); 'optimum gap closed' = (mean best - best-of-1) / (optimum - best-of-1)")
    gap_head = f" {'optimum gap closed [95% CI]':>28}" if opt else ""
    lines.append(f"{'strategy':<18} {'B':>4} {'mean best [95% CI]':>26} {'vs best-of-n [95% CI]':>26} {'steps':>7} "
                 f"{'evals':>6} " + " ".join(f"{'equiv':>6} {'multiplier ' + n:>28}" for n in names) + gap_head)
    for r in summary["table"]:
        mb = f"{_fmt(r['mean_best'])} [{_fmt(r['ci95'][0])}, {_fmt(r['ci95'][1])}]"
        diff = (f"{r['diff_vs_best_of_n']:+.3f} [{r['diff_ci95'][0]:+.3f}, {r['diff_ci95'][1]:+.3f}]"
                if "diff_vs_best_of_n" in r else "-")
        ms = r.get("multipliers", {})
        cols = " ".join(f"{_fmt(ms[n]['equivalents'], '.1f') if n in ms else '-':>6} {multiplier_text(ms.get(n)):>28}"
                        for n in names)
        gap = f" {gap_text(r.get('optimum_gap')):>28}" if opt else ""
        lines.append(f"{r['strategy']:<18} {r['budget']:>4} {mb:>26} {diff:>26} {r['steps']:>7.0f} "
                     f"{r.get('evaluations', 0):>6.1f} {cols}{gap}")
    lines += format_sampler(summary)
    lines += [f"warning: {w}" for w in summary.get("warnings", [])]
    return "\n".join(lines)


def format_sampler(summary: dict[str, Any]) -> list[str]:
    """Search or sampler? Each branching row's multiplier against vanilla best-of-N beside the one against
    best-of-N of random paths with its own branch schedule, and the sampler effect alone."""
    rows = [r for r in summary["table"] if "same_sampler" in r]
    if not rows:
        return []
    name = summary.get("cost_models", ["measured"])[0]
    pool = summary.get("protocol", {}).get("sampler_pool", {})
    lines = ["", "search or sampler? same-sampler baseline: best-of-N of random paths with the strategy's own renoise "
             f"branches (its sampler_schedule), no selection; pool of {pool.get('size', '-')} per task on the "
             "reference pool's root seeds, independent of every contestant. Sampler effect: mean potential of those "
             f"paths minus vanilla samples. Multipliers under {name}.",
             f"{'strategy':<18} {'B':>4} {'schedule':<30} {'vs best-of-n':>28} {'vs same sampler':>28} "
             f"{'sampler effect [95% CI]':>26}"]
    for r in rows:
        ss = r["same_sampler"]
        effect = (f"{ss['effect']:+.3f} [{ss['effect_ci95'][0]:+.3f}, {ss['effect_ci95'][1]:+.3f}]"
                  if "effect" in ss else "-")
        lines.append(f"{r['strategy']:<18} {r['budget']:>4} {ss['schedule']['label']:<30} "
                     f"{multiplier_text((r.get('multipliers') or {}).get(name)):>28} "
                     f"{multiplier_text((ss.get('multipliers') or {}).get(name)):>28} {effect:>26}")
    return lines
