"""The Python API the CLI itself uses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eacps import capabilities, plugins
from eacps.config import (
    ConfigError,
    ExecutorConfig,
    RunConfig,
    SearchConfig,
    build_conditions,
    build_potential,
    check_conditions,
    check_fields,
    create,
    inner_strategy,
    load_config,
    search_section,
    stored_difference,
    validate_params,
)
from eacps.engine.checkpoints import NotCachedError
from eacps.engine.engine import DEFAULT_PRIOR_SEED, Engine, Job, SearchResult
from eacps.engine.executor import Executor
from eacps.engine.progress import status
from eacps.errors import one_line
from eacps.generator import Generator
from eacps.potential import Potential
from eacps.screening import check_context
from eacps.store import Store, read_only, search_id
from eacps.strategy import Strategy
from eacps.types import Condition, Status


def make_strategy(strategy: str | type[Strategy] | Strategy, params: dict[str, Any] | None = None, *,
                  budget: int = 20, seed: int = 0) -> Strategy:
    """A strategy instance from a registered name, a class or an instance (returned as is). ``budget`` obeys the
    config's rule (``search.budget``); ``eacps.search`` checks ``seed`` as ``search.seed`` (internal streams, such
    as compare's reference pool, use seeds past 2^32)."""
    if isinstance(strategy, Strategy):
        return strategy
    check_fields(SearchConfig, budget=budget)
    if isinstance(strategy, str):
        return create("strategy", strategy, params, section="search", field="strategy", budget=budget, seed=seed)
    p = validate_params(strategy.Params, params or {}, "search.params")
    return strategy(p, budget=budget, seed=seed, **inner_strategy(strategy, p, section="search", budget=budget,
                                                                  seed=seed))


def check_compatible(strategy: Strategy, generator: Generator, where: str = "search.strategy") -> None:
    """ConfigError (one line) when ``strategy`` needs a capability ``generator`` does not offer."""
    if (why := capabilities.problem(strategy, generator)) is not None:
        raise ConfigError(f"{where}: {why}")


def check_steps(strategy: Strategy, generator: Generator, max_steps: int | None = None, *,
                steps_field: str = "generator.params.steps", max_steps_field: str = "search.max_steps") -> None:
    """ConfigError (one line, naming the setting) when a search of ``strategy`` could not finish a candidate on
    ``generator``'s schedule within ``max_steps`` (a step-counting strategy on a 1-step schedule, a cap below
    one candidate)."""
    if (problem := strategy.steps_problem(generator.default_steps, max_steps)) is not None:
        where, why = problem
        raise ConfigError(f"{steps_field if where == 'steps' else max_steps_field}: {why}")


def check_runnable(strategy: Strategy, generator: Generator, max_steps: int | None = None, *,
                   where: str = "search.strategy", steps_field: str = "generator.params.steps",
                   max_steps_field: str = "search.max_steps") -> None:
    """``check_compatible`` then ``check_steps``: a search of ``strategy`` on ``generator`` can run at all."""
    check_compatible(strategy, generator, where)
    check_steps(strategy, generator, max_steps, steps_field=steps_field, max_steps_field=max_steps_field)


#: store meta: fingerprints of the generator and potentials whose candidates a run directory holds
IDENTITY_META = "identity"
#: store meta prefix: per search of ``eacps.search``, the strategy and params that asked its recipes
SETTINGS_META = "settings"


def identity(generator: Generator, potential: Potential, preview: Potential | None = None) -> dict[str, Any]:
    return {"generator": generator.fingerprint(), "potential": potential.fingerprint(),
            "preview_potential": None if preview is None else preview.fingerprint()}


def check_identity(run_dir: Path, ident: dict[str, Any], search: str | None = None,
                   settings: dict[str, Any] | None = None) -> None:
    """ConfigError when ``run_dir`` holds candidates of another generator or potential, or ``search`` run with other
    strategy ``settings`` (its stored rows would be returned as this search's); read-only: a refused search writes
    nothing."""
    if not (run_dir / "store.sqlite").exists():
        return
    ro = read_only(run_dir)
    try:
        stored, old = ro.get_meta(IDENTITY_META), ro.get_meta(f"{SETTINGS_META}/{search}") if search else None
    finally:
        ro.close()
    diff = [k for k in ident if isinstance(stored, dict) and stored.get(k) != ident[k]]
    if diff:
        what = {"generator": "generator (other settings)", "potential": "potential (other criteria, scorers or "
                "weights)", "preview_potential": "preview potential"}[diff[0]]
        raise ConfigError(f"run_dir: {run_dir} holds a run of another {what}: fingerprint {stored.get(diff[0])}, "
                          f"this one {ident[diff[0]]}; use another directory")
    if old is not None and settings is not None and old != settings:
        raise ConfigError(f"label: search {search!r} in {run_dir} was run with other strategy settings "
                          f"({json.dumps(old, sort_keys=True)}); give another label or run_dir")


def open_run_dir(run_dir: str | Path, ident: dict[str, Any], search: str | None = None,
                 settings: dict[str, Any] | None = None) -> Store:
    """``run_dir``'s store once ``check_identity`` passed (read-only: a refused search writes nothing), with the
    identity (and ``search``'s strategy ``settings``) recorded."""
    check_identity(Path(run_dir), ident, search, settings)
    store = Store.open(run_dir)
    with store.transaction():
        store.set_meta(IDENTITY_META, ident)
        if search is not None:
            store.set_meta(f"{SETTINGS_META}/{search}", settings)
    return store


def search(
    condition: Condition,
    *,
    generator: Generator,
    potential: Potential,
    strategy: str | type[Strategy] | Strategy = "eacps",
    params: dict[str, Any] | None = None,
    budget: int = 20,
    seed: int = 0,
    batch_size: int = 8,
    prior_seed: int = DEFAULT_PRIOR_SEED,
    run_dir: str | Path | None = None,
    label: str | None = None,
    progress: bool = False,
    preview_potential: Potential | None = None,
    timeout_s: float | None = None,
) -> SearchResult:
    """Search the noise of ``generator`` for the candidate that maximizes ``potential`` on ``condition``.

    Returns the best candidate (``result.best``: recipe, potential, sub-scores, image), the prior and the
    whole history. With ``run_dir`` every candidate is stored there and a repeated call resumes;
    without it a temporary store lives as long as the result. ``timeout_s`` limits each generator and scorer
    call. Arguments obey the config's rules, and a strategy that needs what the generator cannot do, a strategy
    instance that already ran, or a ``run_dir`` holding another generator's or potential's run is a ConfigError
    (StrategyError for the instance) before any compute.
    """
    check_fields(SearchConfig, budget=budget, seed=seed, batch_size=batch_size, prior_seed=prior_seed)
    check_fields(ExecutorConfig, timeout_s=timeout_s)
    strat = make_strategy(strategy, params, budget=budget, seed=seed)
    strat.check_fresh()
    check_runnable(strat, generator)
    ident = identity(generator, potential, preview_potential)
    if (why := check_context(strat, ident, generator)) is not None:  # a value model's warm start of another run
        raise ConfigError(f"search.params.{why}")
    sid = search_id(condition.id, label or strat.name, f"b{strat.budget}", f"s{strat.seed}")
    settings = {"strategy": strat.name, "params": strat.params.model_dump(mode="json")}
    store = open_run_dir(run_dir, ident, sid, settings) if run_dir is not None else None
    engine = Engine(generator, potential, store, batch_size=batch_size, progress=progress,
                    preview_potential=preview_potential, timeout_s=timeout_s)
    try:
        result = engine.run(condition, strat, label=label, search_id=sid, prior_seed=prior_seed)
    finally:
        engine.release()
        if store is not None:
            store.close()
    if run_dir is None:
        result.keepalive = engine  # the temporary store (and the images) lives as long as the result
    return result


@dataclass
class Setup:
    """Everything a config builds, checked before any compute. Unpacks as the older 5-tuple
    ``(config, generator, potential, conditions, executor)``."""

    config: RunConfig
    generator: Generator
    potential: Potential
    conditions: list[Condition]
    executor: Executor
    preview_potential: Potential | None = None
    timeout_s: float | None = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.config, self.generator, self.potential, self.conditions, self.executor))

    def engine(self, store: Store | None, **kw: Any) -> Engine:
        """An engine with every per-config setting (executor, preview potential, time limit)."""
        return Engine(self.generator, self.potential, store, executor=self.executor,
                      preview_potential=self.preview_potential, timeout_s=self.timeout_s, **kw)


@dataclass
class Run:
    config: RunConfig
    results: list[SearchResult]
    run_dir: Path

    @property
    def all_failed(self) -> bool:
        """No candidate of any search (priors included) is OK: the CLI exits non-zero."""
        return bool(self.results) and not any(
            c.status is Status.OK for r in self.results for c in [r.prior, *r.history])


def load_run(path: str | Path, *, progress: bool = False) -> Setup:
    """Parse and build everything a config names, raising ConfigError before any compute. ``progress``: a
    status line on a terminal while the models load."""
    path = Path(path)
    cfg, _ = load_config(path)
    plugins.report_problems()
    return build(cfg, path.parent, progress=progress)


def build(cfg: RunConfig, base_dir: Path, *, progress: bool = False) -> Setup:
    conditions = build_conditions(cfg, base_dir)
    strategies = [make_strategy(s.strategy, s.params, budget=s.budget, seed=s.seed)  # validated before any model
                  for s in cfg.all_searches()]
    potential = build_potential(cfg.potential)
    preview = None
    if cfg.preview_potential is not None:
        preview = build_potential(cfg.preview_potential, section="preview_potential")
        check_conditions(conditions, preview)
    check_conditions(conditions, potential)
    executor = create("executor", cfg.executor.name, cfg.executor.params, section="executor")
    generator = create("generator", cfg.generator.name, cfg.generator.params, section="generator")
    for i, cond in enumerate(conditions):
        try:
            generator.check_condition(cond)
        except ValueError as exc:
            raise ConfigError(f"conditions.{i} ({cond.id!r}): {exc} (generator {generator.name!r})") from None
    load_models(generator, potential, preview, progress=progress)
    for i, (s, strat) in enumerate(zip(cfg.all_searches(), strategies, strict=True)):
        check_runnable(strat, generator, s.max_steps, where=f"{search_section(cfg, i)}.strategy",
                       max_steps_field=f"{search_section(cfg, i)}.max_steps")
        if (why := check_context(strat, identity(generator, potential, preview), generator)) is not None:
            raise ConfigError(f"{search_section(cfg, i)}.params.{why}")
    if cfg.allocation is not None:
        from eacps.allocate import check_config  # eacps.allocate builds on this module

        check_config(cfg, len(conditions))
    return Setup(cfg, generator, potential, conditions, executor, preview, cfg.executor.timeout_s)


def load_models(generator: Generator, potential: Potential, preview: Potential | None = None, *,
                progress: bool = False) -> None:
    """Load every model, then run every scorer's ``preflight`` (credentials, reachability) before the run: a
    model that cannot be loaded or a judge that cannot be reached is a configuration error. A generator's
    ``load`` may raise ``ConfigError`` for a setting its model refuses (``params.steps: ...``)."""
    try:
        with status(f"loading generator {generator.name}…", progress):
            generator.load()
    except (ConfigError, NotCachedError) as exc:  # named relative to the generator entry (params.steps: ...)
        raise ConfigError(f"generator.{exc}") from None
    except Exception as exc:
        raise ConfigError(f"generator.params: {generator.name} cannot load its model: {one_line(exc)}") from None
    for section, pot in (("potential", potential), ("preview_potential", preview)):
        for c in pot.criteria if pot is not None else ():
            where = f"{section}.criteria.{c.name}.params: {c.scorer.name}"
            try:
                with status(f"loading scorer {c.scorer.name} ({section} criterion {c.name})…", progress):
                    c.scorer.load()
            except (ConfigError, NotCachedError) as exc:  # named relative to the criterion (params.model: ...)
                raise ConfigError(f"{section}.criteria.{c.name}.{exc}") from None
            except Exception as exc:
                raise ConfigError(f"{where} cannot load its model: {one_line(exc)}") from None
            preflight = getattr(c.scorer, "preflight", None)
            try:
                if callable(preflight):
                    preflight()
            except Exception as exc:
                raise ConfigError(f"{where} is not ready: {one_line(exc)}") from None


def run_config(config_path: str | Path, run_dir: str | Path, *, progress: bool = False,
               argv: list[str] | None = None, setup: Setup | None = None) -> Run:
    """``eacps run``: one search per condition (and per ``[[search]]`` entry); resumes ``run_dir``.
    ``Run.all_failed`` tells whether no candidate at all was OK. ``setup``: that config already loaded."""
    setup = setup or load_run(config_path, progress=progress)
    cfg = setup.config
    run_dir = Path(run_dir)
    current = cfg.model_dump(mode="json")
    if (run_dir / "store.sqlite").exists():  # checked read-only: a refused run writes nothing
        ro = read_only(run_dir)
        stored = ro.get_meta("config")
        ro.close()
        if stored is not None and stored != current and (diff := stored_difference(stored, cfg)) is not None:
            raise ConfigError(f"--out: {run_dir} holds a run of a different config (first difference: {diff}); "
                              "use another directory")
    with Store.open(run_dir, argv=argv or []) as store:
        store.set_meta("config", current)
        store.set_meta(IDENTITY_META, identity(setup.generator, setup.potential, setup.preview_potential))
        engine = setup.engine(store, progress=progress)
        results = []
        try:
            for s in cfg.all_searches():  # conditions run concurrently, one search config at a time
                if cfg.allocation is not None:  # one total budget moved between the conditions (eacps.allocate)
                    from eacps.allocate import run_allocated

                    results += run_allocated(engine, setup.conditions, s, cfg.allocation)
                    continue
                jobs = [Job(cond, make_strategy(s.strategy, s.params, budget=s.budget, seed=s.seed),
                            label=s.label or s.strategy, prior_seed=s.prior_seed) for cond in setup.conditions]
                results += engine.run_all(jobs, batch_size=s.batch_size, max_steps=s.max_steps)
        finally:
            engine.close()
    return Run(cfg, results, run_dir)
