"""The Python API the CLI itself uses."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eacps import capabilities, plugins
from eacps.checkpoints import NotCachedError
from eacps.config import (
    ConfigError,
    RunConfig,
    build_conditions,
    build_potential,
    check_conditions,
    create,
    load_config,
    search_section,
    stored_difference,
    validate_params,
)
from eacps.engine import DEFAULT_PRIOR_SEED, Engine, Job, SearchResult
from eacps.errors import one_line
from eacps.executor import Executor
from eacps.generator import Generator
from eacps.potential import Potential
from eacps.progress import status
from eacps.store import Store, read_only
from eacps.strategy import Strategy
from eacps.types import Condition, Status


def make_strategy(strategy: str | type[Strategy] | Strategy, params: dict[str, Any] | None = None, *,
                  budget: int = 20, seed: int = 0) -> Strategy:
    """A strategy instance from a registered name, a class or an instance (returned as is)."""
    if isinstance(strategy, Strategy):
        return strategy
    if isinstance(strategy, str):
        return create("strategy", strategy, params, section="search", field="strategy", budget=budget, seed=seed)
    p = validate_params(strategy.Params, params or {}, "search.params")
    return strategy(p, budget=budget, seed=seed)


def check_compatible(strategy: Strategy, generator: Generator, where: str = "search.strategy") -> None:
    """ConfigError (one line) when ``strategy`` needs a capability ``generator`` does not offer."""
    if (why := capabilities.problem(strategy, generator)) is not None:
        raise ConfigError(f"{where}: {why}")


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
    call. A strategy that needs what the generator cannot do is a ConfigError before any compute.
    """
    strat = make_strategy(strategy, params, budget=budget, seed=seed)
    check_compatible(strat, generator)
    store = Store.open(run_dir) if run_dir is not None else None
    engine = Engine(generator, potential, store, batch_size=batch_size, progress=progress,
                    preview_potential=preview_potential, timeout_s=timeout_s)
    try:
        result = engine.run(condition, strat, label=label, prior_seed=prior_seed)
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
    for i, strat in enumerate(strategies):
        check_compatible(strat, generator, f"{search_section(cfg, i)}.strategy")
    if cfg.allocation is not None:
        from eacps.allocate import check_config  # eacps.allocate builds on this module

        check_config(cfg, conditions)
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
