"""``eacps generate``: one search from a prompt, no config file.

The command builds the config ``eacps run`` would read (``build_config``), runs it through the same path
(``eacps.api.run_config``), prints the winner and, with ``--save-config``, writes that config as TOML so a
user can graduate to ``eacps run``. Defaults: the strategy measured best for the generator (``default_strategy``:
tree-search on a generator that can step, else annealed pCN EACPS; docs/findings.md), the write-up's three
criteria where their inputs exist (consistency from the prompt, identity when a reference image is given,
realism always).

``--model digits`` (any registered demo preset) is the embedded testbed: the prompt is the digit, the
reference a held-out exemplar, the preset's scorers judge. Any other model is loaded by the generator of the
first registered ``ModelFamily`` that accepts it (eacps-diffusers: a hub id or local folder) and judged by a
registered ``Judge`` (eacps-vlm: a local transformers VLM, ``--judge ID_OR_PATH``, or an OpenAI-compatible server,
``--judge-url URL --judge MODEL``, key read from the environment variable ``--judge-key-env`` names; the key
itself is never printed or written). Both come from plugins through ``register_generate_backends``: this module
names no model, judge or generator.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eacps import capabilities, plugins, tomlw
from eacps.config import ConfigError, RunConfig, parse_config
from eacps.potential import REFERENCE_WEIGHTS
from eacps.store import describe_os_error

#: what to install when no plugin knows a model that is not a preset, or no judge is registered
BACKENDS_HINT = "install eacps-diffusers and eacps-vlm (pip install -e plugins/eacps-diffusers plugins/eacps-vlm)"
#: the recommended strategy: annealed pCN EACPS (docs/findings.md: +0.82 over best-of-N at budget 20,
#: 4.20x compute multiplier at budget 64)
RECOMMENDED: tuple[str, dict[str, Any]] = (
    "eacps", {"neighborhood": "pcn", "generations": 3, "theta": 0.6, "theta_decay": 0.5})
#: the default on a generator that can step: tree-search with its defaults (docs/findings.md, evaluation split of
#: the digits testbed, tasks no parameter was chosen on: +1.57 [+1.23, +1.93] over best-of-N at budget 20 and
#: 2.98x [1.84, 5.37] its compute when a potential evaluation costs a generation, against +0.49 [+0.23, +0.77]
#: and 1.89x for annealed pCN EACPS)
STEPPING: tuple[str, dict[str, Any]] = ("tree-search", {})


@dataclass
class GenerateRequest:
    """Everything ``eacps generate`` takes (the CLI's options, one to one)."""

    prompt: str
    model: str
    judge: str | None = None
    judge_url: str | None = None
    judge_key_env: str | None = None
    reference: str | None = None
    prior: bool = False
    budget: int = 20
    strategy: str | None = None
    seed: int = 0
    steps: int | None = None
    output: str | None = "best.png"
    save_config: str | None = None
    run_dir: str | None = None
    batch_size: int = 8
    dry_run: bool = False  # validate, resolve and say what would be downloaded; no weights, no search
    allow_download: bool = False  # local_files_only = false for the generator and the local judge


@dataclass
class GenerateOutcome:
    config: dict[str, Any]
    result: Any  # eacps.SearchResult
    output: Path | None
    saved_config: Path | None
    lines: list[str] = field(default_factory=list)


# -- the config ------------------------------------------------------------------------------------------
def preset(model: str) -> Any:
    """The registered demo preset named ``model`` (e.g. ``digits``), or None for a diffusers model."""
    return plugins.get_registry().entries["demo"].get(model) and plugins.get("demo", model)


def _preset_condition(pre: Any, prompt: str, reference: str | None) -> dict[str, Any]:
    """The preset's task whose class label, prompt or id is ``prompt`` (digits: the digit), as a config table."""
    tasks = plugins.get("tasks", pre.tasks)(100)
    text = prompt.strip()
    # isdecimal, not isdigit: '²' is a digit that int() refuses
    match = [t for t in tasks if text in (t.prompt, t.id) or (text.isdecimal() and t.class_label == int(text))]
    if not match:
        labels = sorted({t.class_label for t in tasks if t.class_label is not None})
        allowed = f"class labels {labels[0]}-{labels[-1]}" if labels else "task prompts or ids"
        raise ConfigError(f"PROMPT: model {pre.name!r} has no task for {prompt!r}; allowed: {allowed}")
    task = match[0]  # held-out exemplar of the first task of that class: the reference
    cond: dict[str, Any] = {"id": _slug(task.prompt or f"{pre.name}{task.class_label}")}
    cond.update({k: v for k, v in (("prompt", task.prompt), ("class_label", task.class_label)) if v is not None})
    if reference is not None:
        cond["reference"] = reference
    elif task.extra:
        cond["extra"] = dict(task.extra)
    return cond


def _backends(cls: type) -> list[Any]:
    """The registered ``register_generate_backends`` objects of one class (``ModelFamily`` or ``Judge``), by
    registration order."""
    return [e.cls for e in plugins.get_registry().entries["generate"].values() if isinstance(e.cls, cls)]


def model_family(model: str) -> plugins.ModelFamily | None:
    """The first registered model family that accepts ``model`` (None: no plugin knows it)."""
    return next((f for f in _backends(plugins.ModelFamily) if f.accepts(model)), None)


def judge(remote: bool) -> plugins.Judge:
    """The first registered judge used with (``remote``) or without ``--judge-url``; a one-line error naming what
    to install when there is none."""
    found = next((j for j in _backends(plugins.Judge) if j.remote == remote), None)
    if found is None:
        kind = "a judge served at --judge-url" if remote else "a local judge"
        raise ConfigError(f"{'--judge-url' if remote else '--model'}: no plugin registers {kind}; {BACKENDS_HINT}")
    return found


def _judge_criterion(req: GenerateRequest, criterion: str) -> dict[str, Any]:
    j = judge(remote=req.judge_url is not None)
    return {"scorer": j.scorer, "params": j.params(criterion, req)}


def _criteria(req: GenerateRequest) -> dict[str, Any]:
    pre = preset(req.model)
    if pre is not None:
        return {n: {"scorer": scorer, "weight": w} for n, (scorer, w) in pre.criteria.items()}
    names = ["consistency", "realism"] + (["identity"] if req.reference is not None else [])
    return {n: _judge_criterion(req, n) for n in names}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "prompt"


def build_config(req: GenerateRequest) -> dict[str, Any]:
    """The ``eacps run`` config equivalent to ``req`` (a plain dict, validated by ``parse_config``)."""
    return _build_config(req)[0]


def _build_config(req: GenerateRequest) -> tuple[dict[str, Any], RunConfig]:
    """``build_config``'s dict, and the config it was validated as (``_until_loaded`` of it, parsed)."""
    pre = preset(req.model)
    if pre is not None:
        generator: dict[str, Any] = {"name": pre.generator, "params": {} if req.steps is None else {"steps": req.steps}}
        condition = _preset_condition(pre, req.prompt, req.reference)
    else:
        # check_request refuses a model no family accepts; the config of one is the first family's
        family = model_family(req.model) or next(iter(_backends(plugins.ModelFamily)), None)
        if family is None:
            raise ConfigError(f"--model: unknown model {req.model!r}; other models than the demo presets need a "
                              f"plugin that registers a model family: {BACKENDS_HINT}")
        gp = family.params(req.model, req.allow_download)
        if req.steps is not None:
            gp = {**gp, "steps": req.steps}
        generator = {"name": family.generator, "params": gp}
        condition = {"id": _slug(req.prompt), "prompt": req.prompt}
        if req.reference is not None:
            condition["reference"] = req.reference
    name, params = (req.strategy, {}) if req.strategy else default_strategy(generator["name"], req.steps)
    search = {"strategy": name, "budget": req.budget, "seed": req.seed, "batch_size": req.batch_size,
              "params": params}
    config = {"generator": generator, "potential": {"criteria": _criteria(req)}, "search": search,
              "conditions": [condition]}
    try:
        parsed = parse_config(_until_loaded(config, req))  # field errors are one line, before anything is loaded
    except ConfigError as exc:
        raise ConfigError(_as_option(str(exc), req)) from None
    return config, parsed


#: config fields set by an option of ``eacps generate``: an error names the option
OPTIONS = {"search.budget": "--budget", "search.seed": "--seed", "search.strategy": "--strategy"}


def _as_option(message: str, req: GenerateRequest) -> str:
    """A config error of the built config, naming the option that set the field (``--steps`` for
    ``generator.params.steps`` when given, else ``--model``)."""
    field, _, rest = message.partition(": ")
    if field == "generator.params.steps" and req.steps is not None:
        return f"--steps: {rest}"
    if field in OPTIONS:
        return f"{OPTIONS[field]}: {rest}"
    return f"--model {req.model}: {message}" if message.startswith("generator") else message



# -- the default strategy ------------------------------------------------------------------------------------
def default_strategy(generator: str | Any, steps: int | None = None) -> tuple[str, dict[str, Any]]:
    """What ``generate`` runs without ``--strategy``: ``STEPPING`` (tree-search) on a generator that can step
    with a schedule of at least 2 steps (``steps``, else the instance's own), else ``RECOMMENDED`` (annealed pCN
    EACPS). ``generator`` is a registered name, decided from the class's declared flag without loading anything
    (a generator whose stepping depends on its loaded model gets ``RECOMMENDED`` here, and ``run_generate``
    decides again once it is loaded), or a generator instance."""
    if isinstance(generator, str):
        can_step = _declared_stepping(generator) == capabilities.YES
    else:
        can_step = "stepping" in capabilities.offered(generator)
        steps = steps if steps is not None else generator.default_steps
    return STEPPING if can_step and (steps is None or steps >= 2) else RECOMMENDED


def _declared_stepping(generator: str) -> str:
    """The registered generator class's declared stepping: yes, no, depends on params, unknown."""
    entry = plugins.get_registry().entries["generator"].get(generator)
    target = None if entry is None else entry.target
    return capabilities.UNKNOWN if target is None else capabilities.declared(target)["stepping"]


def _decided_after_loading(config: dict[str, Any], req: GenerateRequest) -> bool:
    """No ``--strategy``, and the generator's stepping depends on its loaded model (diffusers: pipeline, scheduler)."""
    return not req.strategy and _declared_stepping(config["generator"]["name"]) not in (capabilities.YES,
                                                                                         capabilities.NO)


def _until_loaded(config: dict[str, Any], req: GenerateRequest) -> dict[str, Any]:
    """The config to validate and load with: when the default is decided after loading, its search holds
    best-of-n (any budget, any generator) until then."""
    if not _decided_after_loading(config, req):
        return config
    return {**config, "search": {**config["search"], "strategy": "best-of-n", "params": {}}}


def _load_with_default(path: Path, config: dict[str, Any], req: GenerateRequest,
                       progress: bool = False) -> tuple[dict[str, Any], Any]:
    """Load the run's models once (``path`` holds ``_until_loaded(config)``) and, when the default strategy is
    decided after loading, put the one for the loaded generator in ``config`` and the setup."""
    from eacps.api import check_runnable, load_run, make_strategy

    setup = load_run(path, progress=progress)
    if not _decided_after_loading(config, req):
        return config, setup
    name, params = default_strategy(setup.generator)
    config = {**config, "search": {**config["search"], "strategy": name, "params": params}}
    strategy = make_strategy(name, params, budget=req.budget, seed=req.seed)
    check_runnable(strategy, setup.generator,
                   steps_field="--steps" if req.steps is not None else "generator.params.steps")
    setup.config = parse_config(_with_reference(config, req.reference, path.parent))
    return config, setup


# -- checks before any model is loaded ----------------------------------------------------------------------
#: the suffixes ``-o`` may end in, and the format each is written in
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
CONFIG_SUFFIXES = {".toml": "TOML"}


def check_target(text: str, option: str, suffixes: dict[str, str]) -> Path:
    """The file ``option`` names, refused in one line when it could not be written at the end of the search:
    empty, a directory, an unknown suffix, a missing or unwritable folder. Writes nothing."""
    allowed = ", ".join(suffixes)
    if not text.strip():
        raise ConfigError(f"{option}: an empty path; give a file name ending in {allowed}")
    path = Path(text)
    if text.endswith(("/", os.sep)) or path.name in ("", ".", "..") or path.is_dir():
        raise ConfigError(f"{option}: {text} is a directory; give a file name in it (ending in {allowed})")
    if path.suffix.lower() not in suffixes:
        raise ConfigError(f"{option}: {text}: unknown suffix {path.suffix or '(none)'!r}; allowed: {allowed}")
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(f"{option}: folder {folder} does not exist; create it first" if not folder.exists() else
                          f"{option}: {folder} is not a folder")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{option}: {text} exists and is not a regular file")
    try:  # the same kind of write as at the end (a new file beside the target), removed at once
        _temp_beside(path).unlink()
    except OSError as exc:
        raise ConfigError(f"{option}: {describe_os_error(exc, folder)}") from None
    return path


def check_outputs(req: GenerateRequest) -> None:
    """Every file written after the search (``-o``, ``--save-config``) is checked before it."""
    out = check_target(req.output, "--output", IMAGE_FORMATS) if req.output is not None else None
    if req.save_config is not None:
        saved = check_target(req.save_config, "--save-config", CONFIG_SUFFIXES)
        if out is not None and saved.resolve() == out.resolve():
            raise ConfigError(f"--save-config: {req.save_config} is also --output; give another file name")


def check_request(req: GenerateRequest) -> None:
    """Refuse bad input in one line before anything is loaded or written."""
    if req.budget < 1:
        raise ConfigError(f"--budget: must be >= 1 (got {req.budget})")
    check_outputs(req)
    if req.reference is not None and not Path(req.reference).is_file():
        raise ConfigError(f"--reference: no such image file: {req.reference}")
    if preset(req.model) is not None:
        for opt, val in (("--judge", req.judge), ("--judge-url", req.judge_url), ("--prior", req.prior or None)):
            if val is not None:
                raise ConfigError(f"{opt}: model {req.model!r} is scored by its own scorers (no judge, no prior)")
        return
    if not _backends(plugins.ModelFamily):
        presets = ", ".join(plugins.get_registry().names("demo")) or "(none installed)"
        raise ConfigError(f"--model: unknown model {req.model!r}; known: {presets}; other models need a plugin that "
                          f"registers a model family: {BACKENDS_HINT}")
    if req.judge_url is not None:
        _check_remote_judge(req, contact=not req.dry_run)
    check_model_name(req.model)
    judge(remote=req.judge_url is not None)


def check_model_name(model: str) -> None:
    """A ``--model`` that is neither a preset nor accepted by a registered model family (diffusers: a hub id
    ``org/name`` or an existing folder) is unknown: one line with the closest preset ("did you mean 'digits'?"),
    before anything is imported or loaded."""
    if model_family(model) is not None:
        return
    known = plugins.get_registry().names("demo")
    hint = plugins.did_you_mean(model, known)
    known_text = ", ".join(known) or "(no preset installed)"
    others = " or ".join(f.described for f in _backends(plugins.ModelFamily) if f.described)
    raise ConfigError(f"--model: unknown model {model!r}{hint}{' ' if hint else '; '}known: {known_text}"
                      + (f", or {others}" if others else ""))


def _check_remote_judge(req: GenerateRequest, contact: bool = True) -> None:
    """The judge's model is named and its URL well formed; with ``contact``, its key is set and it answers."""
    if not req.judge:
        raise ConfigError("--judge: with --judge-url, name the server's model (e.g. --judge qwen2.5-vl)")
    env = req.judge_key_env or judge(remote=True).key_env or ""
    if contact and not os.environ.get(env):
        raise ConfigError(f"--judge-key-env: environment variable {env} is not set (local servers accept any "
                          f"value: export {env}=none)")
    url = urllib.parse.urlparse(req.judge_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(f"--judge-url: not an http(s) URL: {req.judge_url!r}")
    port = url.port or (443 if url.scheme == "https" else 80)
    if not contact:
        return
    try:
        socket.create_connection((url.hostname, port), timeout=5).close()
    except OSError as exc:
        raise ConfigError(f"--judge-url: cannot reach {url.hostname}:{port} ({exc.strerror or exc})") from None


# -- running ---------------------------------------------------------------------------------------------------
def _with_reference(config: dict[str, Any], reference: str | None, base: Path) -> dict[str, Any]:
    """A copy whose condition names the reference relative to ``base`` (the config file's folder)."""
    if reference is None:
        return config
    cond = {**config["conditions"][0], "reference": os.path.relpath(Path(reference).resolve(), base.resolve())}
    return {**config, "conditions": [cond]}


class OutputError(RuntimeError):
    """The search finished but an output could not be written: ``lines`` describe the winner, ``kept`` is the run
    directory kept for it (not deleted)."""

    exit_code = 1

    def __init__(self, message: str, lines: list[str], kept: Path) -> None:
        super().__init__(message)
        self.lines, self.kept = lines, kept


def run_generate(req: GenerateRequest, *, progress: bool = False) -> GenerateOutcome:
    """Check, build, run one search and write ``req.output`` (and ``req.save_config``) on success. Every output
    path is checked before the search; if one still cannot be written after it, ``OutputError`` carries the
    winner's description and the run directory, which is then kept."""
    check_request(req)
    config, parsed = _build_config(req)
    if req.dry_run:
        return dry_run(req, config, parsed)
    from eacps.api import run_config  # the engine and torch: only once the request is valid
    tmp = Path(tempfile.mkdtemp(prefix="eacps-generate-"))
    keep = False
    try:
        path = tmp / "generate.toml"
        path.write_text(tomlw.dumps(_with_reference(_until_loaded(config, req), req.reference, tmp)))
        run_dir = Path(req.run_dir) if req.run_dir else tmp / "run"
        try:
            config, setup = _load_with_default(path, config, req, progress)
            run = run_config(path, run_dir, progress=progress, argv=["generate", req.prompt], setup=setup)
        except ConfigError as exc:
            raise ConfigError(_as_option(str(exc), req)) from None
        result = run.results[0]
        written: dict[str, Path | None] = {"--output": None, "--save-config": None}
        try:
            written["--output"] = _write_best(result, req.output)
            written["--save-config"] = _save_config(req, config)
        except OSError as exc:
            keep = req.run_dir is None
            option = "--output" if written["--output"] is None and req.output is not None else "--save-config"
            lines = describe(result, config, written["--output"], written["--save-config"])
            raise OutputError(f"{option}: {describe_os_error(exc, exc.filename or option)}; the run is kept in "
                              f"{run_dir} (eacps show {run_dir})", lines, run_dir) from None
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    output, saved = written["--output"], written["--save-config"]
    return GenerateOutcome(config, result, output, saved, describe(result, config, output, saved))


def dry_run(req: GenerateRequest, config: dict[str, Any], parsed: RunConfig) -> GenerateOutcome:
    """``--dry-run``: what ``eacps check`` says of the equivalent config (plugins, capabilities, models to
    download), and ``--save-config`` written; no weights, keys or servers needed, no search. ``parsed``: the
    config as ``build_config`` validated it."""
    from eacps.commands.doctor import check_lines

    lines = check_lines(parsed, Path("."), "the config")
    if _decided_after_loading(config, req):
        lines.append(f"strategy: decided once the model is loaded ({STEPPING[0]} if it can step, else "
                     f"{RECOMMENDED[0]}); --strategy to fix it")
    saved = _save_config(req, config, check_first=True)
    if saved is not None:
        lines.append(f"config: {saved} (eacps check {saved}; eacps run {saved})")
    return GenerateOutcome(config, None, None, saved, ["dry run: nothing loaded, no search", *lines])


def _temp_beside(path: Path) -> Path:
    """A new empty file in ``path``'s folder (created with the process's umask), to be renamed over ``path``."""
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    with open(tmp, "xb"):
        pass
    return tmp


def write_atomic(path: Path, write: Any) -> Path:
    """``write(tmp)`` into a new file beside ``path``, then rename it over ``path``: readers never see half a file,
    and a failed write leaves ``path`` as it was."""
    tmp = _temp_beside(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _save_config(req: GenerateRequest, config: dict[str, Any], *, check_first: bool = False) -> Path | None:
    """``--save-config``: ``config`` written as TOML under a header saying how to run it (after a dry run, how to
    check it first)."""
    if not req.save_config:
        return None
    saved = Path(req.save_config)
    check = f"eacps check {saved.name}; " if check_first else ""
    text = tomlw.dumps(_with_reference(config, req.reference, saved.parent),
                       header=f"eacps generate {req.prompt!r} --model {req.model}: the equivalent config\n"
                       f"{check}eacps run {saved.name} --out runs/{saved.stem}")
    return write_atomic(saved, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _write_best(result: Any, output: str | None) -> Path | None:
    """The winner's image at ``output``, in the format its suffix names (the stored PNG's bytes for .png)."""
    if output is None or result.best is None or result.best.image_path is None:
        return None
    from PIL import Image

    src, out = result.best.root / result.best.image_path, Path(output)
    fmt = IMAGE_FORMATS[out.suffix.lower()]

    def write(tmp: Path) -> None:
        if fmt == "PNG":
            shutil.copyfile(src, tmp)
            return
        with Image.open(src) as img:
            img.convert("L" if img.mode in ("L", "LA", "I", "I;16") else "RGB").save(tmp, format=fmt, quality=95)

    return write_atomic(out, write)


def reproduction(config: dict[str, Any], recipe: Any) -> list[str]:
    """The two lines that reproduce a seed-only winner in plain diffusers (empty for other recipes)."""
    from eacps.analysis.report import reproduction as lines

    return lines(config["generator"], config["conditions"][0].get("prompt"), recipe)


def describe(result: Any, config: dict[str, Any], output: Path | None, saved: Path | None) -> list[str]:
    """What ``eacps generate`` prints: winner, sub-scores, recipe, reproduction, files."""
    best, prior = result.best, result.prior
    if best is None:
        return [f"no candidate succeeded ({result.cost.candidates} tried); see the reasons with --run-dir and "
                "`eacps show`"]
    weights = {n: c.get("weight", REFERENCE_WEIGHTS.get(n)) for n, c in config["potential"]["criteria"].items()}
    scores = ", ".join(f"{k} {v:.2f}" + (f" x {weights[k]}" if weights.get(k) is not None else "")
                       for k, v in best.scores.items())
    lines = [f"best potential {best.potential:.3f}"
             + ("" if prior.potential is None else f" (prior {prior.potential:.3f}, {result.improvement:+.3f})"),
             f"sub-scores: {scores}",
             f"recipe: {best.recipe.key}",
             f"strategy: {config['search']['strategy']}",
             f"cost: {result.cost.candidates} candidates, {result.cost.steps} denoising steps"]
    repro = reproduction(config, best.recipe)
    if repro:
        lines += ["reproduce in plain diffusers:", *(f"  {x}" for x in repro)]
    if output is not None:
        lines.append(f"image: {output}")
    if saved is not None:
        lines.append(f"config: {saved} (eacps run {saved})")
    return lines


# -- command line ----------------------------------------------------------------------------------------------
def command() -> Any:
    """The ``eacps generate`` click command (added to the CLI group by ``eacps.commands.cli``)."""
    import click

    local, remote = (next((j for j in _backends(plugins.Judge) if j.remote == r), None) for r in (False, True))
    judge_default = local.default_model if local is not None else "(no local judge installed)"
    key_default = remote.key_env if remote is not None else "(no served judge installed)"

    @click.command("generate", help="One search from a prompt, no config file: prints the winner's potential, "
                   "sub-scores and recipe (and, for a seed-only winner, two lines reproducing it in plain "
                   "diffusers); writes the best image. Example: eacps generate 3 --model digits --budget 8")
    @click.argument("prompt")
    @click.option("--model", required=True, help="'digits' (the embedded testbed) or a diffusers model id/folder")
    @click.option("--judge", help=f"local VLM id/path (default {judge_default}), or the model name on --judge-url")
    @click.option("--judge-url", help="base URL of an OpenAI-compatible server (vLLM, Ollama...) judging instead")
    @click.option("--judge-key-env", help=f"environment variable holding the judge's API key (default "
                  f"{key_default}); the key is never printed or written")
    @click.option("--reference", type=click.Path(), help="reference image: adds the identity criterion")
    @click.option("--prior", is_flag=True, help="the judge's consistency also compares with the stage-0 prior's scene")
    @click.option("--budget", type=int, default=20, show_default=True, help="candidates (the prior is not counted)")
    @click.option("--strategy", help="registered strategy with its default params (default: tree-search on a generator "
                  "that can step, e.g. digits, SDXL/FLUX with a stepping scheduler; else annealed pCN eacps)")
    @click.option("--seed", type=int, default=0, show_default=True, help="strategy seed")
    @click.option("--steps", type=int, help="denoising steps (default: the model's own)")
    @click.option("-o", "--output", default="best.png", show_default=True,
                  help="where the best image is written: .png (the stored image), .jpg or .jpeg, in an existing folder")
    @click.option("--save-config", type=click.Path(), help="write the equivalent TOML config for `eacps run` (.toml)")
    @click.option("--run-dir", type=click.Path(), help="keep the run store here (default: a temporary one)")
    @click.option("--dry-run", is_flag=True, help="validate, resolve plugins and say what would be downloaded; "
                  "writes --save-config; loads no weights and runs no search")
    @click.option("--allow-download", is_flag=True, help="let the generator and the local judge download their "
                  "models (local_files_only = false); default: local folders and the Hugging Face cache only")
    @click.option("--quiet", is_flag=True, help="no progress bar")
    def generate(quiet: bool, **kw: Any) -> None:
        req = GenerateRequest(**kw)
        try:
            outcome = run_generate(req, progress=not quiet)
        except ConfigError as exc:
            click.echo(f"eacps: error: {exc}", err=True)
            raise SystemExit(2) from None
        except OutputError as exc:  # the winner is printed even when its file could not be written
            click.echo("\n".join(exc.lines))
            click.echo(f"eacps: error: {exc}", err=True)
            raise SystemExit(exc.exit_code) from None
        click.echo("\n".join(outcome.lines))

    return generate
