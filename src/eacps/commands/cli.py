"""The ``eacps`` command line (click). Every command is a thin layer over the Python API.

Commands are added through the ``register_commands`` hook: the built-in ones by
``register_commands`` below, the front-door commands of ``LAZY_COMMANDS`` when first used, and
plugins' (``[project.entry-points.eacps]``) only when a command name is not a built-in one or when
``eacps --help`` lists them, so ``eacps show`` loads no plugin.

Errors are one line on stderr (``eacps: error: ...``). Exit codes: 0 done; 1 the run failed (a filesystem
error such as a full disk, or every candidate FAILED); 2 a config or usage error, or a run directory that
cannot be used as it is (nothing was written); 130 interrupted (143 on SIGTERM), resumed by the same command.
"""

from __future__ import annotations

import importlib
import json
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from eacps import __version__, hookimpl, plugins
from eacps.config import ConfigError
from eacps.store import RunLockedError, StoreError, check_images, describe_os_error
from eacps.tables import format_table, printable

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130

#: commands living in their own modules, imported only when used: ``name: (module[:function], short help)``;
#: the module's ``command()`` (or the named function) returns the click command.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("eacps.commands.doctor:check_command", "validate a config offline: plugins, parameters, capabilities, "
              "downloads"),
    "generate": ("eacps.commands.generate",
                 "one search from a prompt, no config file (eacps generate PROMPT --model MODEL)"),
    "doctor": ("eacps.commands.doctor",
               "Python, torch, devices, libraries, plugins; with CONFIG: what it needs is there"),
    "serve": ("eacps.analysis.serve", "a live read-only page of a run, refreshing as batches land"),
}


class _Stopped(Exception):
    """A KeyboardInterrupt (Ctrl-C, or the engine's clean stop on SIGINT/SIGTERM) carried out of click."""

    def __init__(self, interrupt: KeyboardInterrupt) -> None:
        super().__init__(str(interrupt))
        self.interrupt = interrupt


class RunFailed(click.ClickException):
    """The command ran but its run failed (e.g. every candidate FAILED): exit code 1, one line."""

    exit_code = EXIT_FAILED


# -- shared options (defined once) ------------------------------------------------------------------------------
def out_option(default: str) -> Callable:
    """``--out DIR``: the run directory; a path that exists as a file is a usage error."""
    return click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help=f"run directory (default: {default})")


quiet_option = click.option("--quiet", "-q", is_flag=True, help="no progress bars")
config_argument = click.argument("config", type=click.Path(path_type=Path), metavar="CONFIG")
run_dir_argument = click.argument("run_dir", type=click.Path(path_type=Path), metavar="RUN_DIR")
positive = click.IntRange(min=1)
natural = click.IntRange(min=0)


def _echo_table(header: list[str], rows: list[list[Any]], left: int = 1) -> None:
    click.echo(format_table(header, rows, left=left))


def validate(config: Path) -> None:
    """Parse and validate CONFIG (fields, plugin names, strategy params) before the heavy modules (engine, torch)
    are imported: a config error is one line within a second."""
    from eacps.config import load_config

    load_config(config)


def _default_out(config: Path, suffix: str = "") -> Path:
    from eacps.config import default_run_dir, load_config

    return default_run_dir(config, load_config(config)[0], suffix)


def check_run_dir(out: Path, config: Path) -> None:
    """Refuse a run directory holding results of another config (``eacps.analysis.compare.check_run_dir``), before any
    model loads."""
    if not (out / "store.sqlite").exists():
        return
    from eacps.analysis.compare import check_run_dir as check
    from eacps.config import load_config

    check(out, load_config(config)[0])


def _summary_of(run_dir: Path) -> dict[str, Any]:
    from eacps.analysis.summary import summarize_store
    from eacps.store import read_only

    ro = read_only(run_dir)
    try:
        return summarize_store(ro)
    finally:
        ro.close()




# -- built-in commands ------------------------------------------------------------------------------------------
@click.command("demo", help="Runs eacps (seed-offset and pcn neighbourhoods) and best-of-n at the same budget over "
               "digits tasks; prints a table, writes DIR/report.html and DIR/summary.json. Rerunning with the same "
               "DIR resumes and reuses every finished candidate.", short_help="EACPS vs best-of-N on the embedded "
               "digits testbed (CPU, offline)")
@out_option("./eacps-demo")
@click.option("--tasks", type=positive, default=10, show_default=True, help="number of digits tasks")
@click.option("--budget", type=positive, default=20, show_default=True, help="candidates per search")
@click.option("--seed", type=natural, default=0, show_default=True, help="strategy seed")
@quiet_option
def demo_command(out: Path | None, tasks: int, budget: int, seed: int, quiet: bool) -> None:
    from eacps.commands.demo import run_demo

    run_demo(out or Path("eacps-demo"), n_tasks=tasks, budget=budget, seed=seed, progress=not quiet, echo=click.echo)


@click.command("run", help="One search per condition (and per [[searches]] entry) of CONFIG. If RUN_DIR exists the "
               "run resumes: finished candidates are reused, never generated again. Exit 1 if every candidate "
               "failed.", short_help="run the searches a TOML config describes (resumes RUN_DIR)")
@config_argument
@out_option("the config's `output`, else runs/<config name>")
@quiet_option
def run_command(config: Path, out: Path | None, quiet: bool) -> None:
    validate(config)
    from eacps.analysis.report import write_report
    from eacps.analysis.summary import format_table as summary_table
    from eacps.api import run_config

    out = out or _default_out(config)
    run = run_config(config, out, progress=not quiet, argv=["eacps", *sys.argv[1:]])
    summary = _summary_of(out)
    click.echo(summary_table(summary))
    click.echo(f"run directory: {run.run_dir}; report: {write_report(out)}")
    if run.all_failed:  # no candidate at all (priors included) was OK
        raise RunFailed(f"every candidate FAILED or was FILTERED (reasons: eacps show {out}); fix the cause and rerun "
                        "the same command")


@click.command("show", short_help="the run's table and best candidates",
               help="The run's summary table, then one line per search: candidates, failures, prior, best and the "
               "best recipe (long recipes shortened; --json prints them whole). A comparison's header names the "
               "contestants' budgets and the reference pool. --tree draws the tree of every trajectory search "
               "(path recipes).")
@run_dir_argument
@click.option("--tree", is_flag=True, help="draw each trajectory search's tree (parents from the path recipes)")
@click.option("--json", "as_json", is_flag=True, help="print the summary and every search as JSON (recipes whole)")
@click.option("--search", "search", metavar="NAME",
              help="only the searches with this id, strategy label or id part (e.g. 'eacps', 'B20')")
@click.option("--condition", "condition", metavar="ID", help="only the searches of this condition")
def show_command(run_dir: Path, tree: bool, as_json: bool, search: str | None, condition: str | None) -> None:
    from eacps.allocation_log import stored_allocations
    from eacps.analysis.summary import format_table as summary_table
    from eacps.analysis.summary import load_searches, summarize_store
    from eacps.store import read_only

    try:
        store = read_only(run_dir)
    except FileNotFoundError as exc:
        raise ConfigError(f"RUN_DIR: {exc}") from None
    try:
        logs = stored_allocations(store)  # a damaged log: one line before anything is printed
        searches = select_searches(load_searches(store, logs), search, condition)
        summary = summarize_store(store, searches)
    finally:
        store.close()
    if as_json:  # ensure_ascii: every control or format character of a stored string is escaped
        data = {"summary": summary, "searches": [_search_json(r) for r in searches]}
        click.echo(json.dumps(_finite(data), indent=2))
        return
    _echo_safe(summary_table(summary))
    click.echo()
    rows = [[r.search, len(r.candidates), r.failed, _num(r.prior.potential if r.prior else None),
             _num(r.best.potential if r.best else None), short_recipe(r.best.recipe) if r.best else None]
            for r in searches]
    _echo_safe(format_table(["search", "n", "failed", "prior", "best", "best recipe"], rows, last_left=True))
    _echo_allocations(logs)
    if tree:
        _echo_trees(searches)


def select_searches(searches: list, search: str | None, condition: str | None) -> list:
    """The searches ``show`` is asked for: ``--condition`` exact, ``--search`` an id, a strategy label (with or
    without its ``(n=…)``) or one ``/``-part of an id; a filter matching nothing is a one-line error naming
    what there is."""
    if condition is not None:
        known = sorted({r.condition for r in searches})
        searches = [r for r in searches if r.condition == condition]
        if not searches:
            raise ConfigError(f"--condition: no search of condition {condition!r}; conditions: "
                              + ", ".join(map(repr, known[:20])) + (" …" if len(known) > 20 else ""))
    if search is not None:
        labels = sorted({r.strategy.split(" (n=")[0] for r in searches})
        searches = [r for r in searches if search in (r.search, r.strategy, r.strategy.split(" (n=")[0])
                    or search in r.search.split("/")]
        if not searches:
            raise ConfigError(f"--search: no search matches {search!r}; strategy labels: "
                              + ", ".join(map(repr, labels)))
    return searches


def short_recipe(recipe: Any, width: int = 72) -> str:
    """A recipe on one table line: ``seed 123`` for a seed-only one, else its JSON cut to ``width`` characters."""
    if recipe.is_seed_only:
        return f"seed {recipe.seed}" + ("" if recipe.steps is None else f", {recipe.steps} steps")
    key = recipe.key
    return key if len(key) <= width else key[: width - 1] + "…"


def _finite(x: Any) -> Any:
    """``x`` with NaN and infinities as null: strict JSON (no ``NaN`` tokens)."""
    if isinstance(x, float):
        return x if x == x and abs(x) != float("inf") else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def _search_json(r: Any) -> dict[str, Any]:
    return {"search": r.search, "condition": r.condition, "strategy": r.strategy, "candidates": len(r.candidates),
            "failed": r.failed, "prior": r.prior.potential if r.prior else None,
            "best": r.best.potential if r.best else None, "best_id": r.best.id if r.best else None,
            "best_recipe": json.loads(r.best.recipe.key) if r.best else None}


def _echo_safe(text: str) -> None:
    """Print text holding stored strings (condition ids, labels): control characters escaped."""
    click.echo(printable(text))


def _echo_allocations(logs: dict[str, dict[str, Any]]) -> None:
    """Where a cross-condition budget went and why (``[allocation]`` runs; nothing for others)."""
    from eacps.allocation_log import format_allocation

    for log in logs.values():
        click.echo()
        _echo_safe(format_allocation(log, last=1))


def _echo_trees(searches: list) -> None:
    from eacps.trees import tree_lines

    for r in searches:
        if any(c.recipe.is_path for c in r.candidates):
            _echo_safe(f"\n{r.search} (★ best)")
            _echo_safe("\n".join(tree_lines(r.candidates, best=r.best)))


def _num(x: float | None) -> str | None:
    return None if x is None else f"{x:.3f}"


@click.command("report", short_help="(re)generate the HTML report of a run, comparison or landscape",
               help="Writes the HTML report of RUN_DIR (runs, comparisons, landscapes) and prints its path.")
@run_dir_argument
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="HTML path (default: RUN_DIR/report.html)")
def report_command(run_dir: Path, output: Path | None) -> None:
    from eacps.analysis.report import write_report

    if not (run_dir / "store.sqlite").exists():
        raise ConfigError(f"RUN_DIR: no run store in {run_dir}")
    check_images(run_dir)
    if output is not None and not output.parent.is_dir():
        raise ConfigError(f"--output: folder {output.parent} does not exist")
    click.echo(str(write_report(run_dir, output)))


@click.command("compare", short_help="every strategy on every task at equal cost, with scaling curves",
               help="Runs each strategy at each budget B (B·T denoising steps, T the generator's schedule) on "
               "every condition of CONFIG, REPEATS times; prints mean best potential with bootstrap 95% CIs, "
               "paired differences and the compute multiplier against best-of-n; writes compare.json and "
               "report.html. Reuses the store: a repeated compare regenerates nothing. RUN_DIR must not hold "
               "results of a different config.")
@config_argument
@click.option("--strategies", default="eacps,best-of-n", show_default=True,
              help="comma-separated strategy names or [[searches]] labels")
@click.option("--budgets", default="8,16,32,64", show_default=True, help="comma-separated budgets")
@click.option("--repeats", type=positive, default=None, help="seeds per strategy and budget (default: compare's)")
@click.option("--pool", type=natural, default=None,
              help="reference best-of-N samples per task (default: compare's; 0: none, then no multipliers)")
@click.option("--tune-tasks", type=natural, default=0, show_default=True,
              help="the first N conditions form the tuning split, the rest the evaluation split")
@click.option("--split", "report_split", type=click.Choice(["evaluation", "tuning"]), default="evaluation",
              show_default=True, help="the split to run and report")
@click.option("--seed-offset", type=natural, default=0, show_default=True, help="strategy seeds start here")
@click.option("--seed-mode", type=click.Choice(["per-task", "shared"]), default="per-task", show_default=True,
              help="per-task: each task runs the strategy seeds, and draws its reference pool, under its own seeds, "
              "so tasks are independent; shared: every task the same noises (tasks correlated, CIs over tasks too "
              "narrow; the protocol before 2026-12-05)")
@click.option("--scorer-cost", type=click.FloatRange(min=0), default=None,
              help="generations one potential evaluation costs, for an expensive-judge cost model (0: free)")
@out_option("runs/<config name>-compare")
@quiet_option
def compare_command(config: Path, out: Path | None, quiet: bool, **opts: Any) -> None:
    validate(config)
    from eacps.analysis.compare import format_compare, run_compare
    from eacps.analysis.report import write_report

    out = out or _default_out(config, "-compare")
    check_run_dir(out, config)
    summary = run_compare(config, out, progress=not quiet, **compare_kwargs(opts))
    click.echo(format_compare(summary))
    click.echo(f"{summary['generated']} candidates generated; report: {write_report(out, title='eacps compare')}")


def compare_kwargs(opts: dict[str, Any]) -> dict[str, Any]:
    """``run_compare`` keyword arguments from the compare options (options left at None use compare's own
    defaults; a new option whose name is a ``run_compare`` argument passes through as it is)."""
    names = ("tune_tasks", "report_split", "seed_offset", "seed_mode")
    kw = {k: v for k, v in opts.items() if v is not None and k not in names}
    split = {"tune_tasks": opts.get("tune_tasks") or 0, "report": opts.get("report_split") or "evaluation",
             "seed_offset": opts.get("seed_offset") or 0, "seeds": opts.get("seed_mode") or "per-task"}
    if split != {"tune_tasks": 0, "report": "evaluation", "seed_offset": 0, "seeds": "per-task"}:
        from eacps.analysis.compare import Split

        kw["split"] = Split(**split)
    return kw


@click.command("landscape", short_help="parent/child correlations per neighbourhood: is the seed space structured?",
               help="For each neighbourhood, how parent and child potentials (and noises) correlate over the "
               "conditions of CONFIG. RUN_DIR must not hold results of a different config.")
@config_argument
@click.option("--neighborhoods", default="seed-offset,pcn:0.1,pcn:0.3,pcn:0.6", show_default=True,
              help="comma-separated: seed-offset, pcn:THETA")
@click.option("--parents", type=positive, default=8, show_default=True, help="parents per task")
@click.option("--children", type=positive, default=4, show_default=True, help="children per parent")
@click.option("--seed", type=natural, default=0, show_default=True, help="seed of the parents")
@click.option("--per-step", is_flag=True, help="instead: per denoising step k, the rank correlation between the "
              "potential of the step-k preview and of the final image (PARENTS trajectories per task; needs a "
              "generator that can step)")
@out_option("runs/<config name>-landscape")
@quiet_option
def landscape_command(config: Path, neighborhoods: str, parents: int, children: int, seed: int, per_step: bool,
                      out: Path | None, quiet: bool) -> None:
    validate(config)
    from eacps.analysis.landscape import format_landscape, run_landscape
    from eacps.analysis.report import write_report

    out = out or _default_out(config, "-landscape-steps" if per_step else "-landscape")
    check_run_dir(out, config)
    if per_step:
        from eacps.analysis.step_landscape import format_step_landscape, run_step_landscape

        summary = run_step_landscape(config, out, parents=parents, seed=seed, progress=not quiet)
        click.echo(format_step_landscape(summary))
    else:
        summary = run_landscape(config, out, neighborhoods=neighborhoods, parents=parents, k=children, seed=seed,
                                progress=not quiet)
        click.echo(format_landscape(summary))
    click.echo(f"report: {write_report(out, title='eacps landscape')}")


@click.command("plugins", short_help="every strategy, scorer, generator, executor and task set, by distribution",
               help="Every registered strategy, scorer, generator, executor and task set with the plugin and "
               "distribution that registered it and, for generators, the capabilities their class declares "
               "(noise_recipes, stepping: yes, or depends on params), then any plugin problems (failed imports, "
               "name clashes).")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def plugins_command(as_json: bool) -> None:
    from eacps.capabilities import declared, describe

    reg = plugins.get_registry()
    cli.load_plugins()  # plugin commands' problems too
    rows = [e for kind in plugins.HOOKS for e in reg.entries[kind].values()]
    caps = {e.name: declared(e.target) for e in rows if e.kind == "generator"}
    problems = [*reg.problems, *_command_problems]
    if as_json:
        click.echo(json.dumps({"plugins": [{"kind": e.kind, "name": e.name, "distribution": e.distribution,
                                            "plugin": e.plugin, **({"capabilities": caps[e.name]}
                                                                   if e.kind == "generator" else {})}
                                           for e in rows], "problems": problems}, indent=2))
        return
    _echo_table(["kind", "name", "distribution", "plugin", "capabilities"],
                [[e.kind, e.name, e.distribution, e.plugin, describe(caps[e.name]) if e.kind == "generator" else ""]
                 for e in rows], left=5)
    for p in problems:
        click.echo(f"problem: {p}")


@hookimpl
@click.command("warm-start", short_help="a value model's warm-start file from a run's (preview, final) pairs",
               help="Writes the (preview, final) pairs of RUN_DIR (every judged preview of a path with the final "
               "image of that path) to a warm-start file for a value model, fingerprinted by the model and its "
               "params and by the run's generator and potentials. A trajectory strategy's value_model = "
               "{ warm_start = FILE } then starts from them; a file made for another model, generator, "
               "potential or features, or damaged, is refused (exit 2). With --features generator each preview is "
               "described by the run's generator's preview features too (computed from its stored image), for "
               "value_model = { features = \"generator\" }.")
@run_dir_argument
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="the file to write")
@click.option("--model", default="bayes-ridge", show_default=True, help="the value model (eacps plugins)")
@click.option("--features", type=click.Choice(["potential", "generator"]), default="potential", show_default=True,
              help="what describes a preview: its potential, or that and the generator's preview features")
def warm_start_command(run_dir: Path, output: Path, model: str, features: str) -> None:
    from eacps.screening import ScreenParams, export_warm_start, run_generator

    if not (run_dir / "store.sqlite").exists():
        raise ConfigError(f"RUN_DIR: no run store in {run_dir}")
    if not output.parent.is_dir():
        raise ConfigError(f"--output: folder {output.parent} does not exist")
    try:
        generator = run_generator(run_dir) if features == "generator" else None
    except ValueError as exc:
        raise ConfigError(f"--features: {exc}") from None
    try:
        n = export_warm_start(run_dir, output, ScreenParams(model=model, features=features), generator)
    except ValueError as exc:
        raise ConfigError(str(exc).replace("value_model.model", "--model", 1)) from None
    click.echo(f"{output}: {n} pairs")


def register_commands(register: Callable[[click.Command], None]) -> None:
    """The built-in commands, added through the same hook as plugins' commands."""
    for cmd in (demo_command, run_command, show_command, report_command, compare_command, landscape_command,
                plugins_command, warm_start_command):
        register(cmd)


# -- the group --------------------------------------------------------------------------------------------------
_command_problems: list[str] = []


class EacpsGroup(click.Group):
    """A click group whose plugin commands are loaded on demand (see the module docstring)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._registry: plugins.Registry | None = None
        self._from_plugins: list[str] = []
        self._adding = "eacps.commands.cli"
        register_commands(self.add_command)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        name = name or cmd.name
        if name in self.commands or (name in LAZY_COMMANDS and self._adding != LAZY_COMMANDS[name][0]):
            _command_problems.append(f"plugin {self._adding!r}: command name {name!r} is already taken; ignored")
            return
        super().add_command(cmd, name)
        if self._adding != "eacps.commands.cli" and self._adding not in {m for m, _ in LAZY_COMMANDS.values()}:
            self._from_plugins.append(name)

    def load_plugins(self) -> None:
        """Plugin commands of the current registry (reloaded when plugins are registered in process)."""
        reg = plugins.get_registry()
        if self._registry is reg:
            return
        for name in self._from_plugins:
            self.commands.pop(name, None)
        self._from_plugins, self._registry = [], reg
        _command_problems.clear()
        for impl in plugins.get_registry().pm.hook.register_commands.get_hookimpls():
            self._adding = impl.plugin_name
            args = {"register": self.add_command, "cli": self}
            try:
                impl.function(**{a: args[a] for a in impl.argnames})
            except Exception as exc:
                _command_problems.append(f"plugin {impl.plugin_name!r}: register_commands raised "
                                         f"{type(exc).__name__}: {exc}")

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:  # before click turns it into Abort (after printing a blank line)
            raise _Stopped(exc) from exc

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in LAZY_COMMANDS:
            spec, _ = LAZY_COMMANDS[name]
            self._adding = spec
            module, _, function = spec.partition(":")
            try:
                self.add_command(getattr(importlib.import_module(module), function or "command")(), name)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
                return None  # not shipped in this version: "No such command"
        if name not in self.commands or name in self._from_plugins:  # plugin commands of the current registry
            self.load_plugins()
        return self.commands.get(name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.load_plugins()
        return sorted(set(self.commands) | set(LAZY_COMMANDS))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Lists every command without importing the lazy ones (their short help is in ``LAZY_COMMANDS``)."""
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.commands.get(name)  # a lazy command reads the same loaded or not
            text = LAZY_COMMANDS[name][1] if name in LAZY_COMMANDS else cmd.get_short_help_str(
                limit=formatter.width - 16)
            if cmd is None or not cmd.hidden:
                rows.append((name, text))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group("eacps", cls=EacpsGroup, help="Inference-time search over diffusion-model noise.",
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="eacps", message="%(prog)s %(version)s")
def cli() -> None:
    pass


def commands() -> dict[str, click.Command]:
    """Every command the command line has now (built-in, front-door and plugin ones), by name."""
    with click.Context(cli, info_name="eacps") as ctx:
        found = {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}
    return {name: cmd for name, cmd in found.items() if cmd is not None}


def help_text(name: str | None = None, width: int = 100) -> str:
    """``eacps [NAME] --help`` as printed in a terminal ``width`` columns wide (the docs are generated from it)."""
    # click wraps a terminal's help at its width - 2 (a given terminal_width is used as it is)
    with cli.make_context("eacps", [], terminal_width=width - 2, resilient_parsing=True) as ctx:
        if name is None:
            return cli.get_help(ctx)
        cmd = cli.get_command(ctx, name)
        if cmd is None:
            raise KeyError(name)
        with cmd.make_context(name, [], parent=ctx, resilient_parsing=True) as sub:
            return cmd.get_help(sub)


# -- entry point ------------------------------------------------------------------------------------------------
def _error(message: str) -> None:
    print(f"eacps: error: {printable(' '.join(str(message).split()))}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    try:
        rv = cli.main(args=argv, prog_name="eacps", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        where = exc.ctx.command_path.removeprefix("eacps").strip() if isinstance(exc, click.UsageError) and \
            exc.ctx is not None else ""
        _error(f"{where}: {exc.format_message()}" if where else exc.format_message())
        return exc.exit_code
    except (_Stopped, click.exceptions.Abort) as exc:  # Ctrl-C, or the engine's clean stop on SIGINT/SIGTERM
        cause = exc.interrupt if isinstance(exc, _Stopped) else exc.__cause__
        _error(str(cause) if cause is not None and str(cause) else "interrupted; rerun the same command to resume")
        return getattr(cause, "exit_code", EXIT_INTERRUPTED)
    except (ConfigError, RunLockedError, StoreError, plugins.PluginLoadError) as exc:
        _error(str(exc))
        return getattr(exc, "exit_code", EXIT_CONFIG)
    except sqlite3.OperationalError as exc:  # a store that cannot be written (I/O error, full disk)
        _error(f"run store: cannot write: {exc} (is the disk full or read-only?); every batch committed before is "
               "kept: rerun the same command once fixed")
        return EXIT_FAILED
    except sqlite3.DatabaseError as exc:  # a store damaged beyond the pages read when it was opened
        _error(f"run store damaged: {exc}; keep it for inspection and use another run directory")
        return EXIT_CONFIG
    except FileNotFoundError as exc:  # e.g. a file of the run directory deleted while in use
        _error(f"{exc.filename or 'a file'}: no such file or directory")
        return EXIT_CONFIG
    except OSError as exc:  # full disk, read-only filesystem, a path that cannot be written
        _error(describe_os_error(exc, exc.filename or "a file", "use"))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _error("interrupted; rerun the same command to resume")
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # a command that exits by itself
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_FAILED)
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
