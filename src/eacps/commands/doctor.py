"""``eacps doctor``: what this machine offers eacps, on one screen; with a config, what the config needs.

Without a config: Python, torch (CPU or CUDA build, devices, free GPU memory), diffusers / transformers /
accelerate versions, Hugging Face offline mode and cache location, every plugin with its distribution (and
each generator with the capabilities its class declares, read without loading a model), and the plugins that
failed to load with the reason. With ``CONFIG``: every plugin the config names exists and takes its
parameters, every model it names is a local folder or in the Hugging Face cache (unless the plugin may
download it), reference images exist, judges' API keys are set and their servers answer, and a
requested CUDA device exists. Exit code 1 when something is missing; nothing is loaded or written.

``eacps check CONFIG`` (and ``eacps generate ... --dry-run``) is the offline half: the config is valid, every
plugin it names resolves and takes its parameters, strategies and generator are compatible where that is known
without the model, and it says which models would have to be downloaded (``hf download`` lines) — no weights,
keys or servers needed. Exit 0 for a valid config, 2 (one line) otherwise.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import sys
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eacps import plugins
from eacps.config import ConfigError, RunConfig, create, load_config

PLURAL = {"strategy": "strategies", "scorer": "scorers", "generator": "generators", "executor": "executors",
          "tasks": "task sets", "demo": "demo presets", "value_model": "value models",
          "generate": "generate backends"}
LIBRARIES = ("torch", "diffusers", "transformers", "accelerate", "safetensors", "huggingface-hub", "openai")


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def add(self, key: str, value: str) -> None:
        self.lines.append(f"{key:<18} {value}")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def torch_lines(rep: Report) -> None:
    try:
        import torch
    except ImportError as exc:
        rep.add("torch", f"NOT IMPORTABLE ({exc})")
        return
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU only"
    if getattr(torch.version, "hip", None):
        build = f"ROCm {torch.version.hip}"
    rep.add("torch", f"{torch.__version__} ({build} build), {torch.get_num_threads()} CPU threads")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            rep.add(f"cuda:{i}", f"{torch.cuda.get_device_name(i)}, {_gib(free)} free of {_gib(total)}, "
                    f"bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}")
    elif torch.version.cuda:
        rep.add("cuda", "built with CUDA but no device is visible (driver? CUDA_VISIBLE_DEVICES?)")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        rep.add("mps", "available")
    if not torch.cuda.is_available():
        rep.add("devices", "cpu only")


def hf_lines(rep: Report) -> None:
    offline = [k for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DIFFUSERS_OFFLINE")
               if os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on")]
    rep.add("offline mode", ", ".join(offline) + " set" if offline else "off (generators and scorers still load "
            "local files only unless local_files_only = false, e.g. eacps generate --allow-download)")
    try:
        from huggingface_hub import constants

        rep.add("HF cache", str(constants.HF_HUB_CACHE))
    except ImportError:
        rep.add("HF cache", "huggingface_hub not installed")


def plugin_lines(rep: Report) -> None:
    """Every plugin with its distribution; generators also with the capabilities their class declares."""
    from eacps.capabilities import declared, describe

    reg = plugins.get_registry()
    for kind in plugins.HOOKS:
        entries = reg.entries[kind].values()
        names = ", ".join(f"{e.name} ({e.distribution})" + (f" [offers {describe(declared(e.target))}]"
                                                           if kind == "generator" else "") for e in entries)
        rep.add(PLURAL.get(kind, f"{kind}s"), names or "(none)")
    for p in reg.problems:
        rep.lines.append(f"plugin problem     {p}")


def machine_report() -> Report:
    rep = Report()
    rep.add("python", f"{platform.python_version()} ({sys.executable})")
    rep.add("platform", platform.platform())
    rep.add("eacps", _version("eacps") or "not installed (running from source)")
    torch_lines(rep)
    rep.add("libraries", ", ".join(f"{d} {_version(d) or '-'}" for d in LIBRARIES[1:]))
    hf_lines(rep)
    plugin_lines(rep)
    return rep


# -- a config's needs --------------------------------------------------------------------------------------------
def check_model(where: str, params: Any, filename: str, rep: Report) -> None:
    """A ``model`` parameter must be a local folder or cached, unless the plugin may download it."""
    model = getattr(params, "model", None)
    if not isinstance(model, str) or not model:
        return
    from eacps.engine.checkpoints import in_hf_cache

    if Path(model).expanduser().is_dir() or in_hf_cache(model, filename):
        rep.add(where, f"{model}: found")
        return
    if getattr(params, "local_files_only", True):
        from eacps.engine.checkpoints import download_command

        rep.missing.append(f"{where}: model {model!r} is neither a local folder nor in the Hugging Face cache "
                           f"(download it with: {download_command(model, getattr(params, 'revision', None))}, or set "
                           "local_files_only = false)")
    else:
        rep.add(where, f"{model}: not cached; downloaded on first use (local_files_only = false)")


def check_server(where: str, params: Any, rep: Report) -> None:
    """A remote judge needs its key in the environment and a server that accepts a connection."""
    env = getattr(params, "api_key_env", None)
    if env and not os.environ.get(env):
        rep.missing.append(f"{where}: environment variable {env} (the API key) is not set")
    url = urllib.parse.urlparse(params.base_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=3).close()
        rep.add(where, f"{params.base_url}: reachable")
    except OSError as exc:
        rep.missing.append(f"{where}: cannot reach {params.base_url} ({exc.strerror or exc})")


def check_device(where: str, params: Any, rep: Report) -> None:
    device = getattr(params, "device", None)
    if isinstance(device, str) and device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            rep.missing.append(f"{where}: device {device!r} but torch sees no CUDA device")


def _plugins(cfg: RunConfig) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(where, kind, name, params) of every plugin instance the config names."""
    out = [("generator", "generator", cfg.generator.name, cfg.generator.params),
           ("executor", "executor", cfg.executor.name, cfg.executor.params)]
    for section, pot in (("potential", cfg.potential), ("preview_potential", cfg.preview_potential)):
        for name, c in (pot.criteria if pot is not None else {}).items():
            out.append((f"{section}.criteria.{name}", "scorer", c.scorer, c.params))
    return out


def config_report(path: str | Path, rep: Report) -> None:
    """Add what the config at ``path`` needs and lacks to ``rep`` (nothing is loaded)."""
    path = Path(path)
    try:
        cfg, _ = load_config(path, names=False)  # every unknown name is listed below, not only the first
    except ConfigError as exc:
        rep.missing.append(str(exc))
        return
    rep.lines.append(f"\nconfig {path}")
    for where, kind, name, params in _plugins(cfg):
        field_ = "scorer" if kind == "scorer" else "name"
        try:
            obj = create(kind, name, params, section=where, field=field_)
        except ConfigError as exc:
            rep.missing.append(str(exc))
            continue
        rep.add(where, f"{kind} {name} ({plugins.get_registry().entries[kind][name].distribution})")
        p = obj.params
        if hasattr(p, "base_url"):
            check_server(where, p, rep)
        else:
            check_model(where, p, "model_index.json" if kind == "generator" else "config.json", rep)
        check_device(where, p, rep)
    for i, c in enumerate(cfg.conditions):
        if c.reference is not None and not (path.parent / c.reference).is_file():
            rep.missing.append(f"conditions.{i}.reference: no such image {str(path.parent / c.reference)!r}")
    from eacps.api import make_strategy

    for s in cfg.all_searches():
        try:
            make_strategy(s.strategy, s.params, budget=s.budget, seed=s.seed)
        except ConfigError as exc:
            rep.missing.append(str(exc))
    if cfg.tasks is not None and cfg.tasks.name not in plugins.get_registry().entries["tasks"]:
        rep.missing.append(f"tasks.name: unknown task set {cfg.tasks.name!r}")


def run_doctor(config: str | None = None) -> tuple[int, str]:
    """(exit code, the screen): 1 when the config needs something missing, else 0."""
    rep = machine_report()
    if config is not None:
        config_report(config, rep)
    lines = list(rep.lines)
    if config is not None:
        lines += [f"missing: {m}" for m in rep.missing] or ["nothing missing"]
    return (1 if rep.missing else 0), "\n".join(lines)


def command() -> Any:
    """The ``eacps doctor`` click command."""
    import click

    @click.command("doctor", help="One screen: Python, torch build and devices, free GPU memory, library versions, "
                   "Hugging Face offline mode and cache, every plugin with its distribution (generators with the "
                   "capabilities their class declares) and any that failed to load. With CONFIG: also what the "
                   "config needs; exit code 1 when something is missing.")
    @click.argument("config", required=False)
    def doctor(config: str | None) -> int:
        code, text = run_doctor(config)
        click.echo(text)
        return code

    return doctor


# -- eacps check / generate --dry-run: the offline half ------------------------------------------------------------
def model_source(params: Any, filename: str) -> tuple[str, bool] | None:
    """(where the ``model`` parameter's weights come from, whether they must be downloaded first), or None."""
    from eacps.engine.checkpoints import download_command, in_hf_cache, is_hub_id

    model = getattr(params, "model", None)
    if not isinstance(model, str) or not model or hasattr(params, "base_url"):
        return None
    if Path(model).expanduser().is_dir():
        return f"{model}: local folder", False
    if not is_hub_id(model):
        raise ConfigError(f"params.model: {model!r} is neither a local folder nor a hub id (org/name)")
    revision = getattr(params, "revision", None)
    if in_hf_cache(model, filename, revision=revision, cache_dir=getattr(params, "cache_dir", None)):
        return f"{model}: in the Hugging Face cache", False
    fetch = download_command(model, revision)
    how = ("downloaded on first use (local_files_only = false)" if not getattr(params, "local_files_only", True)
           else f"download it first: {fetch} (or --allow-download / local_files_only = false)")
    return f"{model}: not downloaded; {how}; size unknown offline ({fetch} --dry-run lists the files online)", True


def _capability_line(strategy: Any, generator: Any, where: str) -> str:
    from eacps import capabilities
    from eacps.api import check_compatible
    from eacps.generator import Generator

    needs = sorted(capabilities.required(strategy))
    if not needs:
        return f"{strategy.name}: needs no generator capability"
    if type(generator).load is not Generator.load:  # what it offers depends on the model it loads
        return (f"{strategy.name}: needs {', '.join(needs)}; generator {generator.name!r} says whether it offers "
                "them once its model loads (eacps run checks it before any candidate)")
    check_compatible(strategy, generator, where)
    return f"{strategy.name}: needs {', '.join(needs)}; offered by {generator.name!r}"


def check_config(cfg: RunConfig, base_dir: Path) -> tuple[list[str], list[str]]:
    """(what ``eacps check`` prints, what must be provided before the config runs: models to download, reference
    images) for a parsed config. A problem is a ``ConfigError`` naming its field. Nothing is loaded, fetched or
    contacted."""
    from eacps.api import make_strategy
    from eacps.config import search_section

    rep, needs, seen, generator = Report(), [], set(), None
    for where, kind, name, params in _plugins(cfg):
        obj = create(kind, name, params, section=where, field="scorer" if kind == "scorer" else "name")
        rep.add(where, f"{kind} {name} ({plugins.get_registry().entries[kind][name].distribution})")
        generator = obj if kind == "generator" else generator
        try:
            source = model_source(obj.params, "model_index.json" if kind == "generator" else "config.json")
        except ConfigError as exc:
            raise ConfigError(f"{where}.{exc}") from None
        if source is not None:
            rep.add("  model", source[0])
            if source[1] and obj.params.model not in seen:
                needs.append(f"model {obj.params.model}")
                seen.add(obj.params.model)
        if hasattr(obj.params, "base_url"):
            rep.add("  server", f"{obj.params.base_url} (not contacted; eacps doctor CONFIG checks the key and server)")
    for i, c in enumerate(cfg.conditions):
        if c.reference is not None and not (base_dir / c.reference).is_file():
            rep.add(f"conditions.{i}", f"reference {str(base_dir / c.reference)!r} does not exist yet (eacps run "
                    "needs it)")
            needs.append(f"reference image {base_dir / c.reference}")
    for i, s in enumerate(cfg.all_searches()):
        where = f"{search_section(cfg, i)}.strategy"
        rep.add(search_section(cfg, i), _capability_line(make_strategy(s.strategy, s.params, budget=s.budget,
                                                                       seed=s.seed), generator, where))
    if cfg.allocation is not None:  # as eacps run checks it (the task set counted as the n it is asked for)
        from eacps.allocate import check_config as check_allocation

        check_allocation(cfg, len(cfg.conditions) + (cfg.tasks.n if cfg.tasks is not None else 0))
    return rep.lines, needs


def check_lines(cfg: RunConfig, base_dir: Path, what: str) -> list[str]:
    lines, needs = check_config(cfg, base_dir)
    needs = list(dict.fromkeys(needs))
    tail = (f"{what} is valid; before it runs, provide: {', '.join(needs)}" if needs
            else f"{what} is valid; every model and file it names is here")
    return [*lines, tail]


def check_command() -> Any:
    """The ``eacps check`` click command."""
    import click

    @click.command("check", short_help="validate a config offline: plugins, parameters, capabilities, downloads",
                   help="Validates CONFIG without weights, keys or network: fields and values, every plugin it names "
                   "and its parameters, strategy/generator capabilities where known without the model, reference "
                   "images; says which models would have to be downloaded (with the hf download line). Exit 0 when "
                   "valid, 2 with one line naming the field otherwise. `eacps doctor CONFIG` checks this machine.")
    @click.argument("config", type=click.Path(path_type=Path), metavar="CONFIG")
    def check(config: Path) -> None:
        cfg, _ = load_config(config)
        click.echo("\n".join(check_lines(cfg, config.parent, f"{config}")))

    return check
