"""The calibrator: per-condition statistics of ``standardize`` criteria, from calibration sets computed as
ordinary batches (through the executor) and stored as role ``calibration`` rows, so a resumed run reads
them back.

A condition's calibration set is the prior's seed and ``calibration_samples - 1`` fixed seeds, scored raw by
every ``standardize`` criterion (the first image serves as the prior). The potential and the preview
potential each get their own set and statistics; statistics are kept per (condition, prior seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from eacps.engine.batch import BatchComputer, Pair
from eacps.engine.planner import Planned, Planner
from eacps.potential import Potential, ScoreError, Stats, stats_from_raw
from eacps.recipe import Recipe
from eacps.store import Candidate
from eacps.strategy import SeedStream
from eacps.types import Condition, Status

CALIBRATION_SEED = 0xCA1B
Role = Literal["potential", "preview"]


class CalibrationError(RuntimeError):
    pass


class Calibrator:
    def __init__(self, computer: BatchComputer, planner: Planner) -> None:
        self.computer = computer
        self.planner = planner
        self.stats: dict[tuple[str, int, Role], Stats] = {}

    def _potential(self, role: Role) -> Potential | None:
        return self.computer.preview_potential if role == "preview" else self.computer.potential

    @staticmethod
    def search_id(condition: Condition, prior_seed: int, role: Role) -> str:
        head = "calibration" if role == "potential" else "calibration-preview"
        return f"{head}/{condition.id}/{prior_seed}"

    def plan(self, condition: Condition, prior_seed: int) -> list[tuple[Role, Planned]]:
        """The calibration batches still to compute for this condition; stored sets are read back now."""
        out: list[tuple[Role, Planned]] = []
        for role in ("potential", "preview"):
            pot = self._potential(role)
            if pot is None or not pot.standardizes or (condition.id, prior_seed, role) in self.stats:
                continue
            n = pot.calibration_samples
            seeds = [prior_seed, *SeedStream(CALIBRATION_SEED, prior_seed).take(n - 1)]
            b = self.planner.plan([Recipe.from_seed(s) for s in seeds], condition, role="calibration", seq0=0,
                                  search=self.search_id(condition, prior_seed, role), strategy=None, cache=False)
            if b.todo:
                out.append((role, b))
            else:
                self._set(role, condition, prior_seed, b.cands)  # type: ignore[arg-type]
        return out

    def finish(self, role: Role, condition: Condition, prior_seed: int, b: Planned,
               results: Sequence[Pair] | None) -> None:
        steps = [self.computer.steps_of(r) for r in b.recipes]
        self._set(role, condition, prior_seed, self.planner.commit(b, results, steps))

    def _set(self, role: Role, condition: Condition, prior_seed: int, rows: Sequence[Candidate]) -> None:
        pot = self._potential(role)
        raw = {c.name: [r.scores.get(c.name) for r in rows if r.status is Status.OK] for c in pot.standardizes}
        try:
            self.stats[(condition.id, prior_seed, role)] = stats_from_raw(raw, condition.id)
        except ScoreError as exc:
            what = "preview potential" if role == "preview" else "potential"
            raise CalibrationError(f"cannot calibrate the {what} on condition {condition.id!r}: {exc}") from None

    def stats_for(self, condition: Condition, prior_seed: int) -> tuple[Stats, Stats]:
        """(potential stats, preview potential stats) for a search on ``condition`` with ``prior_seed``."""
        return (self.stats.get((condition.id, prior_seed, "potential"), {}),
                self.stats.get((condition.id, prior_seed, "preview"), {}))
