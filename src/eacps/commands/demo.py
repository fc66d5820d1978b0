"""``eacps demo``: EACPS (both neighbourhoods) vs best-of-N at equal budget on a registered demo preset.

The preset (generator, criteria, task set; by registered name) comes from the plugin registry
(``register_demo_presets``); the digits testbed registers ``digits``. The core imports no plugin."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from eacps import plugins
from eacps.analysis.report import write_report
from eacps.analysis.summary import format_table, summarize_store
from eacps.api import make_strategy
from eacps.config import ConfigError, create
from eacps.engine.engine import Engine, Job
from eacps.plugins import DemoPreset
from eacps.potential import Criterion, Potential
from eacps.store import Store, read_only

#: (label, strategy, params): the demo's contestants. Labels are the keys of summary.json.
CONTESTANTS: list[tuple[str, str, dict[str, Any]]] = [
    ("eacps", "eacps", {"neighborhood": "seed-offset"}),
    ("eacps-pcn", "eacps", {"neighborhood": "pcn", "theta": 0.3}),
    ("best-of-n", "best-of-n", {}),
]


def get_preset(name: str | None = None) -> DemoPreset:
    """A registered demo preset (default: the first by name); ConfigError when none is installed."""
    names = plugins.get_registry().names("demo")
    if not names:
        raise ConfigError("demo: no demo preset is registered; install the digits testbed (pip install -e "
                          "plugins/eacps-digits, or run `make demo`)")
    try:
        return plugins.get("demo", name or names[0])
    except plugins.UnknownPluginError as exc:
        raise ConfigError(f"--preset: {exc}") from None


def preset_potential(preset: DemoPreset) -> Potential:
    return Potential([
        Criterion(name, create("scorer", scorer, section=f"potential.criteria.{name}", field="scorer"), w)
        for name, (scorer, w) in preset.criteria.items()
    ])


def digits_potential() -> Potential:
    """The ``digits`` preset's potential (benchmarks and tests)."""
    return preset_potential(get_preset("digits"))


def _check_args(out: Path, n_tasks: int, budget: int, seed: int, config: dict[str, Any]) -> None:
    """Everything that can be refused is refused before a byte is written (one line, exit 2 in the CLI)."""
    for name, value, low in (("--tasks", n_tasks, 1), ("--budget", budget, 1), ("--seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name}: must be an integer >= {low} (got {value!r})")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {out} is a file, not a directory")
    if (out / "store.sqlite").exists():
        ro = read_only(out)
        try:
            stored = ro.get_meta("config")
        finally:
            ro.close()
        if stored is not None and stored != config:
            raise ConfigError(f"--out: {out} holds results of another run (not this demo with --tasks {n_tasks} "
                              f"--budget {budget} --seed {seed}); use another directory")


def run_demo(out: str | Path = "eacps-demo", *, n_tasks: int = 10, budget: int = 20, seed: int = 0,
             batch_size: int = 20, progress: bool = True, echo=print, preset: str | None = None) -> dict[str, Any]:
    demo = get_preset(preset)
    out = Path(out)
    t0 = time.perf_counter()
    generator = create("generator", demo.generator, section="generator")
    potential = preset_potential(demo)
    config = {"demo": {"tasks": n_tasks, "budget": budget, "seed": seed, "contestants": CONTESTANTS,
                       "potential": potential.describe()}}
    config = json.loads(json.dumps(config))  # as stored (tuples become lists)
    _check_args(out, n_tasks, budget, seed, config)
    tasks = plugins.get("tasks", demo.tasks)(n_tasks, seed=seed)
    for _, name, params in CONTESTANTS:  # refused here, before the run directory exists
        make_strategy(name, params, budget=budget, seed=seed)
    with Store.open(out, argv=["demo", str(out)]) as store:
        store.set_meta("config", config)
        engine = Engine(generator, potential, store, batch_size=batch_size, progress=progress)
        try:
            for label, name, params in CONTESTANTS:  # tasks run concurrently, one contestant at a time
                engine.run_all([Job(cond, make_strategy(name, params, budget=budget, seed=seed), label=label)
                                for cond in tasks])
        finally:
            engine.close()
        generated = engine.generated  # the cost meter's count: skipped batches are not
    ro = read_only(out)
    try:
        summary = summarize_store(ro)
    finally:
        ro.close()
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    summary["generated"] = generated
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    report = write_report(out, title=demo.title or f"eacps demo: EACPS vs best-of-N ({demo.name})")
    echo(format_table(summary))
    echo(f"{generated} candidates generated in {summary['seconds']} s; report: {report}")
    return summary
