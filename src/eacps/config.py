"""Run configuration: TOML (tomllib) validated with pydantic.

Errors are one line naming the field, the bad value and what is allowed (``ConfigError``); the CLI
prints it and exits with code 2.
"""

from __future__ import annotations

import math
import re
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, model_validator

from eacps import plugins
from eacps.cost import CostConfig
from eacps.errors import ConfigError, one_line
from eacps.params import MAX_BUDGET, Params, StrictNumbers
from eacps.potential import REFERENCE_WEIGHTS, Criterion, CriterionConfig, Potential
from eacps.types import Condition

#: deeper nesting than this is refused (a config is a few tables deep; tomllib recurses per level)
MAX_DEPTH = 32
#: values shaped like API keys or tokens (OpenAI/Anthropic ``sk-``, Hugging Face ``hf_``, GitHub, AWS, Slack,
#: Google, a JWT, a bearer header): a config names the environment variable that holds a key, never the key
_SECRET = re.compile(
    r"(?:^|[^A-Za-z0-9])(?:sk-[A-Za-z0-9_\-]{16,}|hf_[A-Za-z0-9]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|"
    r"github_pat_[A-Za-z0-9_]{20,}|AKIA[0-9A-Z]{16}|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_\-]{30,}|"
    r"eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}|Bearer\s+[A-Za-z0-9._\-]{16,})"
)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s]+")


def _secret_problem(text: str) -> str | None:
    """Why a string must not be in a config (a key-shaped value, credentials in a URL), or None."""
    if _SECRET.search(text):
        return "looks like an API key or token"
    for url in _URL.findall(text):
        try:
            parts = urllib.parse.urlsplit(url)
        except ValueError:
            continue
        if parts.username is not None or parts.password is not None:
            return "a URL with credentials (user:KEY@host)"
    return None


def check_values(raw: Any, where: str = "") -> None:
    """Refuse, in one line naming the field, what no field may hold: a non-finite number (``nan``, ``inf``),
    a key-shaped string or a URL with credentials (the value is not echoed), nesting deeper than ``MAX_DEPTH``."""
    stack: list[tuple[str, Any, int]] = [(where, raw, 0)]
    while stack:
        loc, value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ConfigError(f"{loc or '(config)'}: nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{loc}: must be a finite number (got {value})")
        if isinstance(value, str) and (problem := _secret_problem(value)):
            raise ConfigError(f"{loc}: {problem}; keys do not belong in a config (they end up in the run store "
                              "and the report): put the key in an environment variable and name the variable "
                              "(e.g. api_key_env = \"OPENAI_API_KEY\")")
        if isinstance(value, dict):
            stack += [(f"{loc}.{k}" if loc else str(k), v, depth + 1) for k, v in value.items()]
        elif isinstance(value, list):
            stack += [(f"{loc}.{i}" if loc else str(i), v, depth + 1) for i, v in enumerate(value)]


def _loc(prefix: str, loc: tuple) -> str:
    parts = [prefix] if prefix else []
    parts += [str(p) for p in loc if p != "__root__"]
    return ".".join(parts) or "(config)"


def format_validation_error(err: ValidationError, prefix: str = "") -> str:
    e = err.errors(include_url=False)[0]
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        msg = "unknown field"
        fields = getattr(err, "_allowed", None)
        if fields:
            msg += f"; allowed: {', '.join(fields)}"
    elif e["type"] == "literal_error":
        msg = f"must be one of {e.get('ctx', {}).get('expected', '')}"
    value = e.get("input")
    shown = "" if isinstance(value, dict) or e["type"] == "missing" or "(got " in msg else f" (got {value!r})"
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{_loc(prefix, e['loc'])}: {msg}{shown}{more}"


def validate_params(model: type[Params], data: dict[str, Any], where: str) -> Params:
    try:
        return model(**(data or {}))
    except ValidationError as err:
        e = err.errors(include_url=False)[0]
        if e["type"] == "extra_forbidden":
            raise ConfigError(f"{_loc(where, e['loc'])}: unknown parameter; allowed: "
                              f"{', '.join(model.model_fields) or '(none)'}") from None
        raise ConfigError(format_validation_error(err, where)) from None


def check_fields(model: type[Section], **values: Any) -> None:
    """Validate keyword arguments by the fields of a config section, so the Python API obeys the config's rules
    (``check_fields(SearchConfig, budget=b)``): ConfigError naming the argument."""
    try:
        model(**values)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None


def create(kind: plugins.Kind, name: str, params: dict[str, Any] | None = None, *, section: str = "",
           field: str = "name", **kw: Any):
    """Instantiate a registered plugin with validated params. Errors name the config field
    (``{section}.{field}`` for the name, ``{section}.params.*`` for parameters) and the known names. A plugin
    constructor raises ``ConfigError`` with a field relative to its entry (``params.strategy: ...``)."""
    where = f"{section}.{field}" if section else kind
    try:
        cls = plugins.get(kind, name)
    except (plugins.UnknownPluginError, plugins.PluginLoadError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    p = validate_params(cls.Params, params or {}, f"{section}.params" if section else "params")
    if isinstance(getattr(p, "device", None), str):
        check_device(p.device, f"{section}.params.device" if section else "params.device")
    if kind == "strategy":
        kw = {**kw, **inner_strategy(cls, p, section=section, budget=kw["budget"], seed=kw.get("seed", 0))}
    try:
        return cls(p, **kw)
    except ConfigError as exc:  # names a field relative to this entry ("params.strategy: ..."): prefix the entry
        raise ConfigError(f"{section}.{exc}" if section else str(exc)) from None
    except (ValueError, TypeError, FileNotFoundError, OSError) as exc:
        raise ConfigError(f"{where}: {one_line(str(exc))}") from None
    except Exception as exc:  # a plugin's constructor failing in any way is a problem of this config entry
        raise ConfigError(f"{where}: {name} cannot be created: {one_line(exc)}") from None


def inner_strategy(cls: type, params: Any, *, section: str = "", budget: int, seed: int = 0) -> dict[str, Any]:
    """``{"inner": strategy}`` for a strategy class that wraps another (its ``inner_entry(params)`` names the
    wrapped strategy and its params, as ``adaptive`` does): built here like any entry, its fields named under
    ``{section}.params``; ``{}`` for any other class."""
    entry = getattr(cls, "inner_entry", None)
    if entry is None:
        return {}
    name, inner_params = entry(params)
    return {"inner": create("strategy", name, inner_params, section=f"{section}.params" if section else "params",
                            field="strategy", budget=budget, seed=seed)}


def check_device(device: str, where: str) -> None:
    """A ``device`` parameter names a device this machine has (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``)."""
    d = device.strip().lower()
    if d in ("auto", "cpu", "meta") or not d.startswith(("cuda", "mps")):
        return  # other names (e.g. a plugin's own) are the plugin's to check
    import torch

    if d.startswith("mps"):
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ConfigError(f"{where}: no MPS device on this machine (got {device!r}); allowed: auto, cpu")
        return
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = d.partition(":")[2]
    allowed = ", ".join(["auto", "cpu"] + (["cuda"] + [f"cuda:{i}" for i in range(n)] if n else []))
    if not re.fullmatch(r"cuda(:\d+)?", d) or n == 0 or (index and int(index) >= n):
        raise ConfigError(f"{where}: no such device {device!r} (this machine has {n} CUDA device(s)); "
                          f"allowed: {allowed}")


class Section(StrictNumbers):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class GeneratorConfig(Section):
    name: str = Field(description="registered generator name (see `eacps plugins`)")
    params: dict[str, Any] = Field(default_factory=dict, description="the generator's parameters")


class ExecutorConfig(Section):
    name: str = Field("local", description="registered executor: local (overlapped, default), inline, or a plugin")
    params: dict[str, Any] = Field(default_factory=dict, description="the executor's parameters")
    timeout_s: float | None = Field(None, gt=0, description="limit of each generator and scorer call, seconds "
                                    "(its candidates FAILED with the reason); default: none")


class PotentialConfig(Section):
    criteria: dict[str, CriterionConfig] = Field(description="criterion name -> scorer, weight, params")
    calibration_samples: int = Field(8, ge=2, le=256, description="fixed seeds per condition scored to calibrate "
                                     "criteria with calibration.kind = 'standardize'")

    @model_validator(mode="after")
    def _weights(self) -> PotentialConfig:
        for name, c in self.criteria.items():
            if c.weight is None and name not in REFERENCE_WEIGHTS:
                raise ValueError(f"criterion {name!r} needs a weight (reference weights exist only for "
                                 f"{', '.join(REFERENCE_WEIGHTS)})")
        if self.criteria and all((c.weight if c.weight is not None else REFERENCE_WEIGHTS[n]) == 0
                                 for n, c in self.criteria.items()):
            raise ValueError("weights are all zero")
        if not self.criteria:
            raise ValueError("at least one criterion is needed")
        return self


class SearchConfig(Section):
    strategy: str = Field("eacps", description="registered strategy name")
    label: str | None = Field(None, description="name of this search in the store and reports (default: strategy)")
    params: dict[str, Any] = Field(default_factory=dict, description="the strategy's parameters")
    budget: int = Field(20, ge=1, le=MAX_BUDGET, description="candidates per condition (the prior is not counted)")
    max_steps: int | None = Field(None, ge=1, description="optional cap on denoising steps per search: asks stop "
                                  "before it; below one finished candidate (T, fk-steering N·T) it is refused")
    seed: int = Field(0, ge=0, lt=2**32, description="strategy seed")
    batch_size: int = Field(8, ge=1, description="candidates per generator call")
    prior_seed: int = Field(0, ge=0, lt=2**32, description="seed of the stage-0 prior")


class AllocationConfig(Section):
    """``[allocation]``: one total budget over every condition, granted where ``objective`` gains most
    (``eacps.allocate``). Each search's ``budget`` is then the default budget *per condition* of the total."""

    objective: Literal["mean", "worst", "threshold"] = Field(
        description="mean: maximise the average best; worst: raise the weakest conditions first; threshold: bring "
        "as many conditions as possible to a best >= `threshold`, then stop")
    threshold: float | None = Field(None, description="τ of objective = 'threshold', in potential units")
    total_budget: int | None = Field(None, ge=1, description="candidates over every condition (default: the "
                                     "search's budget x the number of conditions)")
    min_per_condition: int = Field(2, ge=2, description="warm-up candidates of every condition")
    grant: int = Field(2, ge=1, description="candidates per grant after the warm-up (one condition at a time)")
    max_per_condition: int | None = Field(None, ge=2, description="cap per condition (default: none)")
    fraction: float = Field(0.1, gt=0, le=1, description="objective worst: raise the mean of the lowest `fraction` "
                            "of the conditions' bests (0.1: the worst decile)")

    @model_validator(mode="after")
    def _threshold(self) -> AllocationConfig:
        if self.objective == "threshold" and self.threshold is None:
            raise ValueError("objective = 'threshold' needs threshold = τ (in potential units)")
        if self.objective != "threshold" and self.threshold is not None:
            raise ValueError(f"threshold is only used with objective = 'threshold' (got objective {self.objective!r})")
        return self


class ConditionConfig(Section):
    id: str = Field(min_length=1)
    prompt: str | None = None
    negative_prompt: str | None = None
    class_label: int | None = None
    reference: str | None = Field(None, description="reference image path, relative to the config file")
    extra: dict[str, Any] = Field(default_factory=dict)


class TasksConfig(Section):
    name: str = Field(description="registered task set (see `eacps plugins`)")
    n: int = Field(10, ge=1, description="number of tasks")
    seed: int = Field(0, ge=0, description="task-set seed")


class RunConfig(Section):
    generator: GeneratorConfig
    potential: PotentialConfig
    preview_potential: PotentialConfig | None = Field(
        None, description="scores previews (recipes with reduced steps, e.g. multi-fidelity rungs) instead of "
        "`potential`: a cheap screen before the expensive potential scores the finalists")
    search: SearchConfig | None = Field(None, description="one search per condition ([search])")
    searches: list[SearchConfig] = Field(default_factory=list, description="several searches ([[searches]])")
    conditions: list[ConditionConfig] = Field(default_factory=list)
    tasks: TasksConfig | None = Field(None, description="conditions from a registered task set")
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    cost: CostConfig = Field(default_factory=CostConfig, description="per-unit costs of the single cost figure "
                             "(default: measured in the run)")
    allocation: AllocationConfig | None = Field(None, description="spend one total budget over the conditions "
                                                "where an objective gains most ([allocation])")
    output: str | None = Field(None, description="default run directory of `eacps run` when --out is not given, "
                               "relative to the config file (default: runs/<config name>)")

    @model_validator(mode="after")
    def _unique(self) -> RunConfig:
        if not self.conditions and self.tasks is None:
            raise ValueError("no conditions: add [[conditions]] tables or a tasks = { name = ..., n = ... } entry")
        if self.search is not None and self.searches:
            raise ValueError("use either [search] or [[searches]], not both")
        ids = [c.id for c in self.conditions]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"condition ids must be unique; repeated: {', '.join(dup)}")
        labels = [s.label or s.strategy for s in self.all_searches()]
        if len(set(labels)) != len(labels):
            raise ValueError("two searches share a label; set search.label")
        return self

    def all_searches(self) -> list[SearchConfig]:
        if self.searches:
            return list(self.searches)
        return [self.search if self.search is not None else SearchConfig()]


def load_config(path: str | Path, *, names: bool = True) -> tuple[RunConfig, dict[str, Any]]:
    """Read and validate a config file (``parse_config``); ``names=False`` leaves unknown plugin names to the
    caller (``eacps doctor`` lists every problem instead of the first)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config: file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config: {path} is a directory, not a TOML file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config: {path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8"
                          ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"config: {path}: nested more than {MAX_DEPTH} levels deep") from None
    except OSError as exc:
        raise ConfigError(f"config: cannot read {path}: {exc.strerror or exc}") from None
    return parse_config(raw, names=names), raw


def parse_config(raw: dict[str, Any], *, names: bool = True) -> RunConfig:
    """Validate a config (as read from TOML): fields, values, every plugin name (with ``names``), strategy names
    and parameters of every search."""
    check_values(raw)
    try:
        cfg = RunConfig(**raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None
    if names:
        check_names(cfg)
    check_searches(cfg)
    return cfg


def check_names(cfg: RunConfig) -> None:
    """Every plugin the config names is registered (one line with "did you mean", nothing imported)."""
    reg = plugins.get_registry()
    named: list[tuple[str, plugins.Kind, str]] = [("generator.name", "generator", cfg.generator.name),
                                                  ("executor.name", "executor", cfg.executor.name)]
    for section, pot in (("potential", cfg.potential), ("preview_potential", cfg.preview_potential)):
        criteria = pot.criteria if pot is not None else {}
        named += [(f"{section}.criteria.{n}.scorer", "scorer", c.scorer) for n, c in criteria.items()]
    if cfg.tasks is not None:
        named.append(("tasks.name", "tasks", cfg.tasks.name))
    for where, kind, name in named:
        if name not in reg.entries[kind]:
            raise ConfigError(f"{where}: {plugins.UnknownPluginError(kind, name, reg.names(kind))}")


def search_section(cfg: RunConfig, i: int) -> str:
    """The config field of the i-th search: ``search`` or ``searches.<i>``."""
    return f"searches.{i}" if cfg.searches else "search"


def check_searches(cfg: RunConfig) -> None:
    """Every search's strategy exists and takes its params (errors name ``searches.N.*`` or ``search.*``)."""
    for i, s in enumerate(cfg.all_searches()):
        create("strategy", s.strategy, s.params, section=search_section(cfg, i), field="strategy", budget=s.budget,
               seed=s.seed)


def default_run_dir(config_path: str | Path, cfg: RunConfig, suffix: str = "") -> Path:
    """``output`` of the config (relative to its file) if set, else ``runs/<config name><suffix>``."""
    config_path = Path(config_path)
    if cfg.output:
        return config_path.parent / (cfg.output + suffix)
    return Path("runs") / f"{config_path.stem}{suffix}"


def _full_params(kind: plugins.Kind, name: str, params: dict[str, Any]) -> dict[str, Any]:
    """A plugin's params with its defaults spelled out (as given if the plugin or params are not valid)."""
    try:
        return plugins.get(kind, name).Params(**params).model_dump(mode="json")
    except Exception:
        return dict(params)


def _normal_potential(cfg: PotentialConfig | None) -> dict[str, Any] | None:
    if cfg is None:
        return None
    d = cfg.model_dump(mode="json")
    for name, c in cfg.criteria.items():
        d["criteria"][name]["weight"] = c.weight if c.weight is not None else REFERENCE_WEIGHTS.get(name)
        d["criteria"][name]["params"] = _full_params("scorer", c.scorer, c.params)
        d["criteria"][name]["calibration"] = _full_calibration(c)
    return d


def _full_calibration(c: CriterionConfig) -> dict[str, Any] | None:
    """A criterion's calibration with the default (None: the scorer's own, else none) spelled out."""
    from eacps.potential import Calibration

    if c.calibration is not None:
        return c.calibration.model_dump(mode="json")
    try:
        default = plugins.get("scorer", c.scorer).default_calibration
        return Calibration(**(default or {})).model_dump(mode="json")
    except Exception:
        return None


def normalized(cfg: RunConfig) -> dict[str, Any]:
    """What a run's results depend on, with every default spelled out: two configs that differ only in
    spelling (defaults written or not, ``[search]`` or one ``[[searches]]``, reference weights written out,
    another executor or ``output``) give the same dict."""
    d = cfg.model_dump(mode="json", exclude={"search", "searches", "executor", "output"})
    d["generator"]["params"] = _full_params("generator", cfg.generator.name, cfg.generator.params)
    d["potential"] = _normal_potential(cfg.potential)
    d["preview_potential"] = _normal_potential(cfg.preview_potential)
    d["searches"] = [{**s.model_dump(mode="json"), "label": s.label or s.strategy, "params": _strategy_params(s)}
                     for s in cfg.all_searches()]
    return d


def _strategy_params(s: SearchConfig) -> dict[str, Any]:
    """A search's strategy params with defaults spelled out; a param left unset (None) that the strategy derives
    from its budget and keeps as an attribute of the same name (eacps' ``k_global``) is given that value."""
    params = _full_params("strategy", s.strategy, s.params)
    try:
        strategy = plugins.get("strategy", s.strategy)(plugins.get("strategy", s.strategy).Params(**s.params),
                                                       budget=s.budget, seed=s.seed)
    except Exception:
        return params
    for k, v in params.items():
        derived = getattr(strategy, k, None) if v is None else None
        if isinstance(derived, int | float | str | bool):
            params[k] = derived
    return params


def first_difference(a: Any, b: Any, where: str = "") -> str | None:
    """The first field where two JSON-like values differ (``None`` if equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if (diff := first_difference(a.get(k), b.get(k), f"{where}.{k}" if where else str(k))) is not None:
                return diff
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if (diff := first_difference(x, y, f"{where}.{i}" if where else str(i))) is not None:
                return diff
        return None
    return None if a == b else (where or "(config)")


def stored_difference(stored: dict[str, Any] | None, cfg: RunConfig, *, searches: bool = True) -> str | None:
    """The first field where ``cfg`` differs from a config stored in a run directory, compared normalized
    (``None``: the same run). With ``searches=False`` only what the candidates' values depend on is compared
    (generator, potentials, conditions, cost), as ``compare`` and ``landscape`` choose their own searches."""
    if stored is None:
        return None
    try:
        old = normalized(RunConfig(**stored))
    except (ValidationError, TypeError):
        return "(config)"  # not a run config (a demo's store, or another format)
    new = normalized(cfg)
    if not searches:
        old.pop("searches"), new.pop("searches")
    return first_difference(old, new)


def build_potential(cfg: PotentialConfig, section: str = "potential") -> Potential:
    criteria = []
    for name, c in cfg.criteria.items():
        scorer = create("scorer", c.scorer, c.params, section=f"{section}.criteria.{name}", field="scorer")
        weight = c.weight if c.weight is not None else REFERENCE_WEIGHTS[name]
        criteria.append(Criterion(name, scorer, weight, c.calibration))
    return Potential(criteria, calibration_samples=cfg.calibration_samples)


def build_conditions(cfg: RunConfig, base_dir: Path) -> list[Condition]:
    from eacps.store import load_png

    out = []
    for i, c in enumerate(cfg.conditions):
        ref = None
        if c.reference is not None:
            p = (base_dir / c.reference).resolve()
            try:
                ref = load_png(p)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"conditions.{i}.reference: cannot read image {str(p)!r}: {exc}") from None
        out.append(Condition(c.id, c.prompt, c.negative_prompt, c.class_label, ref,
                             str(c.reference) if c.reference else None, None, dict(c.extra)))
    if cfg.tasks is not None:
        try:
            fn = plugins.get("tasks", cfg.tasks.name)
        except (plugins.UnknownPluginError, plugins.PluginLoadError) as exc:
            raise ConfigError(f"tasks.name: {exc}") from None
        out += list(fn(cfg.tasks.n, cfg.tasks.seed))
    ids = [c.id for c in out]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"conditions: ids must be unique; repeated: {sorted({i for i in ids if ids.count(i) > 1})}")
    return out


def check_conditions(conditions: list[Condition], potential: Potential) -> None:
    """Refuse up front a condition a scorer cannot use, rather than fail every candidate."""
    for i, cond in enumerate(conditions):
        for crit in potential.criteria:
            try:
                crit.scorer.check_condition(cond)
            except (ValueError, TypeError, LookupError) as exc:
                raise ConfigError(f"conditions.{i} ({cond.id!r}): {one_line(str(exc))} "
                                  f"(criterion {crit.name!r})") from None
