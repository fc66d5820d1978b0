"""The potential U(x) = sum_k w_k * v_k(x): a weighted sum of named criteria, each backed by a scorer.

Every sub-score is recorded, not only the sum. A criterion whose scorer raises, times out, or returns anything
but a finite number in [0, 10] (after calibration), marks the candidate FAILED with that reason.

A potential is a pure function of (images, condition, per-condition statistics): ``evaluate`` takes the
statistics of ``standardize`` criteria as an argument (``stats_from_raw`` computes them from a calibration
set) and returns, with each ``Scored``, the scoring time per criterion (the cost meter adds them up).
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from eacps.errors import CallTimeout, call_with_timeout, one_line
from eacps.params import Params
from eacps.scorer import SCORE_MAX, SCORE_MIN, Scorer
from eacps.types import Condition, Image

#: The write-up's reference weights (consistency, realism, identity).
REFERENCE_WEIGHTS: dict[str, float] = {"consistency": 1.0, "realism": 4.0, "identity": 1.5}

#: per-condition statistics of ``standardize`` criteria: {criterion: (mean, std)} of raw calibration values
Stats = Mapping[str, tuple[float, float]]


class Calibration(Params):
    """Maps a scorer's raw value to [0, 10] so that weights mean what users think.

    * ``none``: the raw value must already be in [0, 10] (else FAILED).
    * ``affine``: ``scale * raw + offset``, clipped to [0, 10].
    * ``range``: ``10 * clip((raw - lo) / (hi - lo), 0, 1)``.
    * ``standardize``: per-condition standardization, ``10 * Phi((raw - mu_c) / sigma_c)`` where ``mu_c`` and
      ``sigma_c`` are the mean and standard deviation of this criterion's raw values on the condition's
      calibration set (``Potential.calibration_samples`` fixed seeds, scored before the search). A value
      of 5 is then "typical for this condition", 8.4 is one sigma above it, whatever the scorer's own scale
      or the condition's difficulty.
    """

    kind: Literal["none", "affine", "range", "standardize"] = "none"
    scale: float = 1.0
    offset: float = 0.0
    lo: float = 0.0
    hi: float = 10.0

    @model_validator(mode="after")
    def _check(self) -> Calibration:
        if self.kind == "range" and not self.hi > self.lo:
            raise ValueError(f"calibration range needs hi > lo, got lo={self.lo}, hi={self.hi}")
        return self

    def apply(self, raw: float, stats: tuple[float, float] | None = None) -> float:
        if self.kind == "standardize":
            if stats is None:
                raise ScoreError("no calibration statistics for this condition")
            mu, sd = stats
            return SCORE_MAX * float(_normal_cdf((raw - mu) / sd))
        if self.kind == "affine":
            return min(SCORE_MAX, max(SCORE_MIN, self.scale * raw + self.offset))
        if self.kind == "range":
            return SCORE_MAX * min(1.0, max(0.0, (raw - self.lo) / (self.hi - self.lo)))
        return raw


class ScoreError(Exception):
    """A scorer returned something that is not a valid score."""


def _normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def finite_number(value: Any) -> float:
    """``value`` as a float, or ScoreError when it is not a finite real number (an exception, None, NaN...)."""
    if isinstance(value, BaseException):
        raise ScoreError(one_line(value))
    if value is None:
        raise ScoreError("returned None")
    if isinstance(value, bool) or not isinstance(value, numbers.Real | np.floating | np.integer):
        raise ScoreError(f"not a number: {value!r}"[:200])
    v = float(value)
    if math.isnan(v):
        raise ScoreError("returned NaN")
    if math.isinf(v):
        raise ScoreError(f"returned {v}")
    return v


def check_value(value: Any, calibration: Calibration | None = None,
                stats: tuple[float, float] | None = None) -> float:
    """The validated (calibrated) score, or ScoreError with a human-readable reason."""
    v = finite_number(value)
    if calibration is not None:
        v = calibration.apply(v, stats)
    if not SCORE_MIN <= v <= SCORE_MAX:
        raise ScoreError(f"out of range [0, 10]: {v}")
    return v


@dataclass
class Criterion:
    name: str
    scorer: Scorer
    weight: float
    #: None: the scorer's ``default_calibration`` (``none`` when it declares none)
    calibration: Calibration | None = None

    def __post_init__(self) -> None:
        if self.calibration is None:
            self.calibration = Calibration(**(self.scorer.default_calibration or {}))


@dataclass
class Scored:
    """One image's scores. ``criterion_seconds``: this image's share of each criterion's scoring time (one
    scorer call per criterion listed); ``seconds`` is their sum."""

    scores: dict[str, float]
    potential: float | None
    reason: str | None
    seconds: float = 0.0
    criterion_seconds: dict[str, float] = field(default_factory=dict)


class PotentialConfigError(ValueError):
    pass


class CriterionConfig(Params):
    scorer: str = Field(description="registered scorer name")
    weight: float | None = Field(None, ge=0, description="default: the reference weight of this criterion name")
    params: dict[str, Any] = Field(default_factory=dict, description="the scorer's own parameters")
    calibration: Calibration | None = Field(None, description="default: the scorer's own (else none)")


class Potential:
    """Weighted criteria. ``evaluate`` scores a batch and returns one ``Scored`` per image."""

    def __init__(self, criteria: Sequence[Criterion], *, calibration_samples: int = 8) -> None:
        if not criteria:
            raise PotentialConfigError("a potential needs at least one criterion")
        names = [c.name for c in criteria]
        if len(set(names)) != len(names):
            raise PotentialConfigError(f"duplicate criterion names: {names}")
        if not any(c.weight > 0 for c in criteria):
            raise PotentialConfigError("potential weights are all zero")
        self.criteria = list(criteria)
        if calibration_samples < 2:
            raise PotentialConfigError("calibration_samples must be >= 2")
        self.calibration_samples = calibration_samples

    @property
    def standardizes(self) -> list[Criterion]:
        """Criteria calibrated per condition (they need a calibration set before scoring)."""
        return [c for c in self.criteria if c.calibration.kind == "standardize"]

    @classmethod
    def from_scorers(cls, weights: dict[str, float] | None = None, **scorers: Scorer) -> Potential:
        """``Potential.from_scorers(consistency=s1, realism=s2, identity=s3)`` with reference weights
        unless ``weights`` says otherwise."""
        w = {**REFERENCE_WEIGHTS, **(weights or {})}
        missing = [n for n in scorers if n not in w]
        if missing:
            raise PotentialConfigError(f"no weight for criteria {missing}; pass weights={{...}}")
        return cls([Criterion(n, s, w[n]) for n, s in scorers.items()])

    def fingerprint(self) -> str:
        spec = [(c.name, c.scorer.fingerprint(), c.weight, c.calibration.model_dump()) for c in self.criteria]
        if self.standardizes:
            spec.append(("calibration_samples", self.calibration_samples))
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"criterion": c.name, "scorer": c.scorer.name, "weight": c.weight, "calibration": c.calibration.kind}
            for c in self.criteria
        ]

    def raw_scores(self, images: Sequence[Image], condition: Condition, criteria: Sequence[Criterion] | None = None,
                   *, timeout_s: float | None = None) -> list[Scored]:
        """Uncalibrated values of ``criteria`` (default: the ``standardize`` ones), for calibration sets: the
        valid ones in ``scores``, the others in ``reason``; ``potential`` is None."""
        return self._evaluate(images, condition, criteria or self.standardizes, timeout_s, raw=True)

    def evaluate(self, images: Sequence[Image], condition: Condition, stats: Stats | None = None, *,
                 timeout_s: float | None = None) -> list[Scored]:
        """One ``Scored`` per image. ``stats``: the condition's statistics of ``standardize`` criteria."""
        out = self._evaluate(images, condition, self.criteria, timeout_s, stats=stats or {})
        for o in out:
            if o.reason is None:
                o.potential = float(sum(c.weight * o.scores[c.name] for c in self.criteria))
        return out

    def _evaluate(self, images: Sequence[Image], condition: Condition, criteria: Sequence[Criterion],
                  timeout_s: float | None, *, stats: Stats | None = None, raw: bool = False) -> list[Scored]:
        out = [Scored({}, None, None) for _ in images]
        reasons: list[list[str]] = [[] for _ in images]
        for c in criteria if images else ():
            t0 = time.perf_counter()
            values = self._score_criterion(c, images, condition, timeout_s)
            share = (time.perf_counter() - t0) / len(images)
            for i, value in enumerate(values):
                out[i].criterion_seconds[c.name] = share
                try:
                    out[i].scores[c.name] = (finite_number(value) if raw
                                             else check_value(value, c.calibration, stats.get(c.name)))
                except ScoreError as exc:
                    reasons[i].append(f"{c.name} ({c.scorer.name}): {exc}")
        for o, r in zip(out, reasons, strict=True):
            o.seconds = sum(o.criterion_seconds.values())
            o.reason = "; ".join(r) if r else None
        return out

    @staticmethod
    def _score_criterion(c: Criterion, images: Sequence[Image], condition: Condition,
                         timeout_s: float | None) -> list[Any]:
        """The scorer's values for the batch; if the batch call raises, one image at a time (isolating the
        failure). A call that times out fails its images without a retry."""
        what = f"scorer {c.scorer.name!r}"
        try:
            values = list(call_with_timeout(lambda: c.scorer.score(images, condition), timeout_s, what))
            if len(values) != len(images):
                raise ScoreError(f"returned {len(values)} values for {len(images)} images")
            return values
        except CallTimeout as exc:
            return [exc for _ in images]
        except Exception:
            pass
        values = []
        for img in images:
            try:
                v = list(call_with_timeout(lambda img=img: c.scorer.score([img], condition), timeout_s, what))
                values.append(v[0] if len(v) == 1 else ScoreError(f"returned {len(v)} values for 1 image"))
            except Exception as exc:
                values.append(exc)
        return values


def stats_from_raw(raw: Mapping[str, Sequence[Any]], condition_id: str) -> dict[str, tuple[float, float]]:
    """Mean and std of each criterion's valid raw values on a condition's calibration set (ScoreError when a
    criterion has fewer than 2 valid values)."""
    stats = {}
    for name, values in raw.items():
        vals = [float(v) for v in values if isinstance(v, numbers.Real) and not isinstance(v, bool)
                and math.isfinite(float(v))]
        if len(vals) < 2:
            raise ScoreError(f"criterion {name!r}: fewer than 2 valid calibration scores for {condition_id!r}")
        stats[name] = (float(np.mean(vals)), max(float(np.std(vals, ddof=1)), 1e-6))
    return stats
