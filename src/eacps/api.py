"""The Python API the CLI itself uses."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eacps import plugins
from eacps.config import (
    ConfigError,
    RunConfig,
    build_conditions,
    build_potential,
    check_conditions,
    create,
    load_config,
    validate_params,
)
from eacps.engine import DEFAULT_PRIOR_SEED, Engine, Job, SearchResult
from eacps.executor import Executor
from eacps.generator import Generator
from eacps.potential import Potential
from eacps.store import Store, read_only
from eacps.strategy import Strategy
from eacps.types import Condition


def make_strategy(strategy: str | type[Strategy] | Strategy, params: dict[str, Any] | None = None, *,
                  budget: int = 20, seed: int = 0) -> Strategy:
    """A strategy instance from a registered name, a class or an instance (returned as is)."""
    if isinstance(strategy, Strategy):
        return strategy
    if isinstance(strategy, str):
        return create("strategy", strategy, params, section="search", field="strategy", budget=budget, seed=seed)
    p = validate_params(strategy.Params, params or {}, "search.params")
    return strategy(p, budget=budget, seed=seed)


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
) -> SearchResult:
    """Search the noise of ``generator`` for the candidate that maximizes ``potential`` on ``condition``.

    Returns the best candidate (``result.best``: recipe, potential, sub-scores, image), the prior and the
    whole history. With ``run_dir`` every candidate is stored there and a repeated call resumes;
    without it a temporary store lives as long as the result.
    """
    strat = make_strategy(strategy, params, budget=budget, seed=seed)
    store = Store.open(run_dir) if run_dir is not None else None
    engine = Engine(generator, potential, store, batch_size=batch_size, progress=progress)
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
class Run:
    config: RunConfig
    results: list[SearchResult]
    run_dir: Path


def load_run(path: str | Path) -> tuple[RunConfig, Generator, Potential, list[Condition], Executor]:
    """Parse and build everything a config names, raising ConfigError before any compute."""
    path = Path(path)
    cfg, _ = load_config(path)
    plugins.report_problems()
    return (cfg, *build(cfg, path.parent))


def build(cfg: RunConfig, base_dir: Path) -> tuple[Generator, Potential, list[Condition], Executor]:
    conditions = build_conditions(cfg, base_dir)
    for s in cfg.all_searches():  # validate strategy names and params before loading any model
        make_strategy(s.strategy, s.params, budget=s.budget, seed=s.seed)
    potential = build_potential(cfg.potential)
    if cfg.preview_potential is not None:
        potential.preview = build_potential(cfg.preview_potential, section="preview_potential")
        check_conditions(conditions, potential.preview)
    check_conditions(conditions, potential)
    executor = create("executor", cfg.executor.name, cfg.executor.params, section="executor")
    generator = create("generator", cfg.generator.name, cfg.generator.params, section="generator")
    for i, cond in enumerate(conditions):
        try:
            generator.check_condition(cond)
        except ValueError as exc:
            raise ConfigError(f"conditions.{i} ({cond.id!r}): {exc} (generator {generator.name!r})") from None
    load_models(generator, potential)
    return generator, potential, conditions, executor


def load_models(generator: Generator, potential: Potential) -> None:
    """Load every model before the run: a model that cannot be loaded is a configuration error."""
    try:
        generator.load()
    except Exception as exc:
        raise ConfigError(f"generator.params: {generator.name} cannot load its model: {_one_line(exc)}") from None
    for c in potential.criteria:
        try:
            c.scorer.load()
        except Exception as exc:
            raise ConfigError(f"potential.criteria.{c.name}.params: {c.scorer.name} cannot load its model: "
                              f"{_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def run_config(config_path: str | Path, run_dir: str | Path, *, progress: bool = False,
               argv: list[str] | None = None) -> Run:
    """``eacps run``: one search per condition (and per ``[[search]]`` entry); resumes ``run_dir``."""
    cfg, generator, potential, conditions, executor = load_run(config_path)
    run_dir = Path(run_dir)
    current = cfg.model_dump(mode="json")
    if (run_dir / "store.sqlite").exists():  # checked read-only: a refused run writes nothing
        ro = read_only(run_dir)
        stored = ro.get_meta("config")
        ro.close()
        if stored is not None and stored != current:
            raise ConfigError(f"--out: {run_dir} holds a run of a different config; use another directory")
    with Store.open(run_dir, argv=argv or []) as store:
        store.set_meta("config", current)
        engine = Engine(generator, potential, store, progress=progress, executor=executor,
                        preview_potential=potential.preview)
        results = []
        try:
            for s in cfg.all_searches():  # conditions run concurrently, one search config at a time
                engine.batch_size, engine.max_steps = s.batch_size, s.max_steps
                jobs = [Job(cond, make_strategy(s.strategy, s.params, budget=s.budget, seed=s.seed),
                            label=s.label or s.strategy, prior_seed=s.prior_seed) for cond in conditions]
                results += engine.run_all(jobs)
        finally:
            engine.close()
    return Run(cfg, results, run_dir)
