"""Run configuration: TOML (tomllib) validated with pydantic.

Errors are one line naming the field, the bad value and what is allowed (``ConfigError``); the CLI
prints it and exits with code 2.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from eacps import plugins
from eacps.cost import CostConfig
from eacps.params import Params
from eacps.potential import REFERENCE_WEIGHTS, Criterion, CriterionConfig, Potential
from eacps.types import Condition


class ConfigError(ValueError):
    """A configuration error, already formatted as one line."""


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
    shown = "" if isinstance(value, dict) or e["type"] == "missing" else f" (got {value!r})"
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


def create(kind: plugins.Kind, name: str, params: dict[str, Any] | None = None, *, section: str = "",
           field: str = "name", **kw: Any):
    """Instantiate a registered plugin with validated params. Errors name the config field
    (``{section}.{field}`` for the name, ``{section}.params.*`` for parameters) and the known names."""
    where = f"{section}.{field}" if section else kind
    try:
        cls = plugins.get(kind, name)
    except plugins.UnknownPluginError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    p = validate_params(cls.Params, params or {}, f"{section}.params" if section else "params")
    try:
        return cls(p, **kw)
    except (ValueError, TypeError, FileNotFoundError, OSError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GeneratorConfig(Section):
    name: str = Field(description="registered generator name (see `eacps plugins`)")
    params: dict[str, Any] = Field(default_factory=dict, description="the generator's parameters")


class ExecutorConfig(Section):
    name: str = Field("local", description="registered executor: local (overlapped, default), inline, or a plugin")
    params: dict[str, Any] = Field(default_factory=dict, description="the executor's parameters")


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
    budget: int = Field(20, ge=1, description="candidates per condition (the prior is not counted)")
    max_steps: int | None = Field(None, ge=1, description="optional cap on denoising steps per search")
    seed: int = Field(0, ge=0, lt=2**32, description="strategy seed")
    batch_size: int = Field(8, ge=1, description="candidates per generator call")
    prior_seed: int = Field(0, ge=0, lt=2**32, description="seed of the stage-0 prior")


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
    output: Literal["images", "none"] = "images"

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


def load_config(path: str | Path) -> tuple[RunConfig, dict[str, Any]]:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config: file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {path}: invalid TOML: {exc}") from None
    return parse_config(raw), raw


def parse_config(raw: dict[str, Any]) -> RunConfig:
    try:
        return RunConfig(**raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None


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
        except plugins.UnknownPluginError as exc:
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
            except ValueError as exc:
                raise ConfigError(f"conditions.{i} ({cond.id!r}): {exc} (criterion {crit.name!r})") from None
