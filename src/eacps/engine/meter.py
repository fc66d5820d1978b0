"""The cost meter: what each search is charged, and the measured unit costs of the work computed.

Cost is counted twice on purpose. *Charged* cost (``Cost.candidates``, ``steps``, ``scorer_calls``) is what
the search would have spent on its own: every candidate it asked, whether computed now or served from the
store (a resumed run, or a strategy that shares seeds with another). *Spent* work (``Cost.generated``) is
what this process computed. Comparisons use charged cost, so reuse never flatters a strategy.

Unit costs are measured from the results themselves: each ``Scored`` carries its scoring time per criterion
and each ``Generated`` its generation time, wherever the batch was computed (in process or on Ray actors).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eacps.cost import accumulate, empty_totals
from eacps.potential import Scored
from eacps.store import Candidate
from eacps.types import Generated, Status


@dataclass
class Cost:
    candidates: int = 0  # charged: candidates the search asked
    steps: int = 0  # charged: denoising steps of those candidates
    scorer_calls: dict[str, int] = field(default_factory=dict)  # charged: per criterion
    generated: int = 0  # spent: candidates computed by this process (skipped batches are not)
    generated_steps: int = 0  # spent: denoising steps of those
    reused: int = 0  # served from the store
    gen_seconds: float = 0.0  # of the candidates computed
    score_seconds: float = 0.0
    value_seconds: float = 0.0  # measured: a value model's fitting, prediction and preview features (screening)

    def to_json(self) -> dict[str, Any]:
        return {
            "candidates": self.candidates, "steps": self.steps, "scorer_calls": dict(self.scorer_calls),
            "generated": self.generated, "reused": self.reused,
            "gen_seconds": round(self.gen_seconds, 4), "score_seconds": round(self.score_seconds, 4),
            "value_seconds": round(self.value_seconds, 6),
        }


class CostMeter:
    """Charges candidates to searches (``charge``, the one place) and keeps the run's unit-cost totals."""

    def __init__(self, totals: dict[str, Any] | None = None) -> None:
        self.totals = totals if totals is not None else empty_totals()
        self.generated = 0  # candidates computed by this process: the one count ("generated") commands report

    def charge(self, cost: Cost, c: Candidate, criteria: Sequence[str], *, computed: bool,
               skipped: bool = False) -> None:
        """Charge one asked candidate to a search's ``cost``: its stored charged denoising steps (``c.charged``, what
        the search's ``PathLedger`` charged when it was asked: model calls beyond prefixes the search already paid
        for; its own steps for a row without one). ``computed``: this process generated it (not served from the
        store, not skipped); ``skipped``: stored FAILED without computing (a batch that killed the process
        repeatedly), neither generated nor reused."""
        cost.candidates += 1
        cost.steps += c.charge
        if c.image_path is not None and c.status is not Status.FILTERED:  # it reached the scorers
            for name in criteria:
                cost.scorer_calls[name] = cost.scorer_calls.get(name, 0) + 1
        if computed:
            cost.generated += 1
            cost.generated_steps += c.steps
            cost.gen_seconds += c.gen_seconds
            cost.score_seconds += c.score_seconds
        elif not skipped:
            cost.reused += 1

    def measure(self, results: Sequence[tuple[Generated, Scored | None]], steps: Sequence[int]) -> dict[str, Any]:
        """Add one computed batch to the unit-cost totals; returns them (stored with the batch's rows)."""
        calls: dict[str, int] = defaultdict(int)
        seconds: dict[str, float] = defaultdict(float)
        for _, sc in results:
            for name, s in (sc.criterion_seconds if sc is not None else {}).items():
                calls[name] += 1
                seconds[name] += s
        self.generated += len(results)
        return accumulate(self.totals, gen_seconds=sum(g.seconds for g, _ in results), steps=sum(steps),
                          calls=calls, score_seconds=seconds)
