"""``eacps demo``: EACPS (both neighbourhoods) vs best-of-N at equal budget on the digits testbed."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from eacps.api import make_strategy
from eacps.config import ConfigError, create
from eacps.engine import Engine, Job
from eacps.potential import REFERENCE_WEIGHTS, Criterion, Potential
from eacps.report import write_report
from eacps.store import Store, read_only
from eacps.summary import format_table, summarize_store

#: (label, strategy, params): the demo's contestants. Labels are the keys of summary.json.
CONTESTANTS: list[tuple[str, str, dict[str, Any]]] = [
    ("eacps", "eacps", {"neighborhood": "seed-offset"}),
    ("eacps-pcn", "eacps", {"neighborhood": "pcn", "theta": 0.3}),
    ("best-of-n", "best-of-n", {}),
]


def digits_potential() -> Potential:
    return Potential([
        Criterion(name, create("scorer", f"digits-{name}", section=f"potential.criteria.{name}", field="scorer"), w)
        for name, w in REFERENCE_WEIGHTS.items()
    ])


def run_demo(out: str | Path = "eacps-demo", *, n_tasks: int = 10, budget: int = 20, seed: int = 0,
             batch_size: int = 20, progress: bool = True, echo=print) -> dict[str, Any]:
    try:
        import eacps_digits
    except ImportError:
        raise ConfigError("demo: the embedded digits testbed is not installed (pip install -e plugins/eacps-digits, "
                          "or run `make demo`)") from None
    out = Path(out)
    t0 = time.perf_counter()
    generator = create("generator", "digits", section="generator")
    potential = digits_potential()
    tasks = eacps_digits.tasks(n_tasks, seed=seed)
    with Store.open(out, argv=["demo", str(out)]) as store:
        store.set_meta("config", {"demo": {"tasks": n_tasks, "budget": budget, "seed": seed,
                                           "contestants": CONTESTANTS, "potential": potential.describe()}})
        engine = Engine(generator, potential, store, batch_size=batch_size, progress=progress)
        try:
            for label, name, params in CONTESTANTS:  # tasks run concurrently, one contestant at a time
                engine.run_all([Job(cond, make_strategy(name, params, budget=budget, seed=seed), label=label)
                                for cond in tasks])
        finally:
            engine.close()
        generated = store.generated
    ro = read_only(out)
    try:
        summary = summarize_store(ro)
    finally:
        ro.close()
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    summary["generated"] = generated
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    report = write_report(out, title="eacps demo: EACPS vs best-of-N on the digits testbed")
    echo(format_table(summary))
    echo(f"{generated} candidates generated in {summary['seconds']} s; report: {report}")
    return summary
