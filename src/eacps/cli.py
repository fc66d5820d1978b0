"""The ``eacps`` command line. Every command is a thin layer over the Python API."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from eacps import __version__, plugins
from eacps.config import ConfigError
from eacps.store import RunLockedError

EXIT_CONFIG = 2


def cmd_demo(args: argparse.Namespace) -> int:
    from eacps.demo import run_demo

    run_demo(args.out, n_tasks=args.tasks, budget=args.budget, seed=args.seed, progress=not args.quiet)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from eacps.api import run_config
    from eacps.report import write_report
    from eacps.summary import format_table, summarize_store

    out = Path(args.out) if args.out else Path("runs") / Path(args.config).stem
    run = run_config(args.config, out, progress=not args.quiet, argv=sys.argv)
    from eacps.store import read_only

    ro = read_only(out)
    try:
        print(format_table(summarize_store(ro)))
    finally:
        ro.close()
    print(f"run directory: {run.run_dir}; report: {write_report(out)}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from eacps.store import read_only
    from eacps.summary import format_table, load_searches, summarize_store

    try:
        store = read_only(args.run_dir)
    except FileNotFoundError as exc:
        raise ConfigError(f"RUN_DIR: {exc}") from None
    try:
        print(format_table(summarize_store(store)))
        print()
        print(f"{'search':<40} {'n':>4} {'failed':>6} {'prior':>8} {'best':>8}  best recipe")
        for r in load_searches(store):
            prior = "-" if r.prior is None or r.prior.potential is None else f"{r.prior.potential:.3f}"
            best = "-" if r.best is None else f"{r.best.potential:.3f}"
            recipe = "-" if r.best is None else r.best.recipe.key
            print(f"{r.search:<40} {len(r.candidates):>4} {r.failed:>6} {prior:>8} {best:>8}  {recipe}")
    finally:
        store.close()
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from eacps.report import write_report

    if not (Path(args.run_dir) / "store.sqlite").exists():
        raise ConfigError(f"RUN_DIR: no run store in {args.run_dir}")
    print(write_report(args.run_dir, args.output))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from eacps.compare import format_compare, run_compare
    from eacps.report import write_report

    out = Path(args.out) if args.out else Path("runs") / f"{Path(args.config).stem}-compare"
    summary = run_compare(args.config, out, strategies=args.strategies, budgets=args.budgets, repeats=args.repeats,
                          pool=args.pool, progress=not args.quiet)
    print(format_compare(summary))
    print(f"{summary['generated']} candidates generated; report: {write_report(out, title='eacps compare')}")
    return 0


def cmd_landscape(args: argparse.Namespace) -> int:
    from eacps.landscape import format_landscape, run_landscape
    from eacps.report import write_report

    out = Path(args.out) if args.out else Path("runs") / f"{Path(args.config).stem}-landscape"
    summary = run_landscape(args.config, out, neighborhoods=args.neighborhoods, parents=args.parents,
                            k=args.children, seed=args.seed, progress=not args.quiet)
    print(format_landscape(summary))
    print(f"report: {write_report(out, title='eacps landscape')}")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    reg = plugins.get_registry()
    rows = [e for kind in plugins.HOOKS for e in reg.entries[kind].values()]
    if args.json:
        print(json.dumps({"plugins": [{"kind": e.kind, "name": e.name, "distribution": e.distribution,
                                       "plugin": e.plugin} for e in rows], "problems": reg.problems}, indent=2))
        return 0
    print(f"{'kind':<10} {'name':<22} {'distribution':<18} plugin")
    for e in rows:
        print(f"{e.kind:<10} {e.name:<22} {e.distribution:<18} {e.plugin}")
    for p in reg.problems:
        print(f"problem: {p}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="eacps", description="Inference-time search over diffusion-model noise.")
    p.add_argument("--version", action="version", version=f"eacps {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="EACPS vs best-of-N on the embedded digits testbed (CPU, offline)",
                       description="Runs eacps (seed-offset and pcn neighbourhoods) and best-of-n at the same "
                       "budget over digits tasks; prints a table, writes DIR/report.html and DIR/summary.json. "
                       "Rerunning with the same DIR resumes and reuses every finished candidate.")
    d.add_argument("--out", default="eacps-demo", help="output directory (default: ./eacps-demo)")
    d.add_argument("--tasks", type=int, default=10, help="number of digits tasks (default: 10)")
    d.add_argument("--budget", type=int, default=20, help="candidates per search (default: 20)")
    d.add_argument("--seed", type=int, default=0, help="strategy seed (default: 0)")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.set_defaults(func=cmd_demo)

    r = sub.add_parser("run", help="run the searches a TOML config describes (resumes RUN_DIR)",
                       description="One search per condition (and per [[search]] entry) of CONFIG. If RUN_DIR "
                       "exists the run resumes: finished candidates are reused, never generated again.")
    r.add_argument("config", help="TOML config (see examples/digits.toml)")
    r.add_argument("--out", help="run directory (default: runs/<config name>)")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("show", help="the run's table and best candidates")
    s.add_argument("run_dir", metavar="RUN_DIR")
    s.set_defaults(func=cmd_show)

    rp = sub.add_parser("report", help="(re)generate the HTML report of a run, comparison or landscape")
    rp.add_argument("run_dir", metavar="RUN_DIR")
    rp.add_argument("--output", help="HTML path (default: RUN_DIR/report.html)")
    rp.set_defaults(func=cmd_report)

    c = sub.add_parser("compare", help="every strategy on every task at equal cost, with scaling curves",
                       description="Runs each strategy at each budget (full-candidate equivalents) on every "
                       "condition of CONFIG, REPEATS times; prints mean best potential with bootstrap 95%% CIs, "
                       "paired differences and the compute multiplier against best-of-n; writes compare.json "
                       "and report.html. Reuses the store: a repeated compare regenerates nothing.")
    c.add_argument("config", help="TOML config (generator, potential, conditions or tasks)")
    c.add_argument("--strategies", default="eacps,best-of-n",
                   help="comma-separated strategy names or [[searches]] labels (default: eacps,best-of-n)")
    c.add_argument("--budgets", default="8,16,32,64", help="comma-separated budgets (default: 8,16,32,64)")
    c.add_argument("--repeats", type=int, default=1, help="seeds per strategy and budget (default: 1)")
    c.add_argument("--pool", type=int, default=0,
                   help="extra best-of-N samples per task feeding the best-of-N curve, so compute multipliers can "
                   "be measured beyond the largest budget (default: 0)")
    c.add_argument("--out", help="run directory (default: runs/<config name>-compare)")
    c.add_argument("--quiet", action="store_true", help="no progress bars")
    c.set_defaults(func=cmd_compare)

    ls = sub.add_parser("landscape", help="parent/child correlations per neighbourhood: is the seed space "
                        "structured?")
    ls.add_argument("config", help="TOML config")
    ls.add_argument("--neighborhoods", default="seed-offset,pcn:0.1,pcn:0.3,pcn:0.6",
                    help="comma-separated: seed-offset, pcn:THETA (default: seed-offset,pcn:0.1,pcn:0.3,pcn:0.6)")
    ls.add_argument("--parents", type=int, default=8, help="parents per task (default: 8)")
    ls.add_argument("--children", type=int, default=4, help="children per parent (default: 4)")
    ls.add_argument("--seed", type=int, default=0, help="seed of the parents (default: 0)")
    ls.add_argument("--out", help="run directory (default: runs/<config name>-landscape)")
    ls.add_argument("--quiet", action="store_true", help="no progress bars")
    ls.set_defaults(func=cmd_landscape)

    pl = sub.add_parser("plugins", help="every strategy, scorer and generator with its distribution")
    pl.add_argument("--json", action="store_true", help="machine-readable output")
    pl.set_defaults(func=cmd_plugins)
    for name, text in CLICK_COMMANDS.items():  # listed in --help; main runs them (see run_click_command)
        sub.add_parser(name, help=text, add_help=False)
    return p


#: commands written with click (each module's ``command()``), run as they are by ``main``
CLICK_COMMANDS = {
    "generate": "one search from a prompt, no config file (eacps generate PROMPT --model MODEL)",
    "doctor": "Python, torch, devices, libraries, plugins; with CONFIG: exit 1 when something it needs is missing",
    "serve": "a live read-only page of a run (best-so-far, best images, candidates), refreshing as batches land",
}


def run_click_command(name: str, argv: list[str]) -> int:
    import importlib

    import click

    cmd = importlib.import_module(f"eacps.{name}").command()
    try:
        rv = cmd.main(argv, prog_name=f"eacps {name}", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return rv if isinstance(rv, int) else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in CLICK_COMMANDS:
        return run_click_command(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"eacps: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except RunLockedError as exc:
        print(f"eacps: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        print("eacps: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
