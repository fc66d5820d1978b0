"""The cost meter: a search is charged every candidate it asked (computed now or served from the store), scorer
calls only for candidates that reached the scorers, and the unit-cost totals add up the work computed."""

from __future__ import annotations

import numpy as np
import pytest

from eacps import Recipe, Status
from eacps.cost import empty_totals
from eacps.meter import Cost, CostMeter
from eacps.potential import Scored
from eacps.store import Candidate
from eacps.types import Generated

CRITERIA = ("realism", "consistency")


def cand(seq: int, status: Status = Status.OK, *, image: bool = True, steps: int = 10, gen: float = 0.0,
         score: float = 0.0) -> Candidate:
    potential = 1.0 if status is Status.OK else None
    return Candidate("s", seq, "search", "c", Recipe.from_seed(seq), steps, status, potential,
                     image_path=f"images/{seq:020x}.png" if image else None, gen_seconds=gen, score_seconds=score)


def test_charge_counts_asked_candidates_their_steps_and_the_scorer_calls_they_reached():
    meter, cost = CostMeter(), Cost()
    meter.charge(cost, cand(0), CRITERIA, computed=True)
    meter.charge(cost, cand(1, Status.FILTERED), CRITERIA, computed=True)  # an image, but never scored
    meter.charge(cost, cand(2, Status.FAILED, image=False), CRITERIA, computed=True)  # the generator failed
    meter.charge(cost, cand(3, Status.FAILED), CRITERIA, computed=True)  # a scorer failed: it was called
    assert (cost.candidates, cost.steps) == (4, 40)
    assert cost.scorer_calls == {"realism": 2, "consistency": 2}


def test_charged_steps_are_the_ledgers_when_given_and_spent_steps_the_candidates_own():
    meter, cost = CostMeter(), Cost()
    meter.charge(cost, cand(0, steps=10), CRITERIA, computed=True, steps=4)  # a branch: 6 steps shared with a prefix
    meter.charge(cost, cand(1, steps=10), CRITERIA, computed=True, steps=0)  # a preview of a path already paid for
    assert cost.steps == 4
    assert cost.generated_steps == 20


def test_reuse_is_charged_in_full_but_never_counted_as_generated():
    meter, cost = CostMeter(), Cost()
    meter.charge(cost, cand(0, gen=0.5, score=0.25), CRITERIA, computed=True)
    meter.charge(cost, cand(1, gen=7.0, score=7.0), CRITERIA, computed=False)  # served from the store
    assert cost.candidates == 2 and cost.steps == 20 and cost.scorer_calls == {"realism": 2, "consistency": 2}
    assert (cost.generated, cost.reused, cost.generated_steps) == (1, 1, 10)
    assert (cost.gen_seconds, cost.score_seconds) == (0.5, 0.25)  # the reused candidate's times are not ours


def test_measure_adds_a_computed_batch_to_the_unit_cost_totals():
    meter = CostMeter()
    img = np.zeros((4, 4, 1), np.float32)
    results = [
        (Generated(img, seconds=0.5), Scored({"realism": 1.0}, 1.0, None, 0.3, {"realism": 0.1, "consistency": 0.2})),
        (Generated(img, seconds=0.25), Scored({}, None, "NaN", 0.1, {"realism": 0.1})),
        (Generated.failed("boom"), None),  # generated (and failed): no scorer call
    ]
    tot = meter.measure(results, [10, 10, 10])
    assert tot["gen_seconds"] == pytest.approx(0.75) and tot["steps"] == 30
    assert tot["calls"] == {"realism": 2, "consistency": 1}
    assert tot["score_seconds"] == pytest.approx({"realism": 0.2, "consistency": 0.2})
    assert meter.generated == 3
    again = meter.measure(results[:1], [4])
    assert again is meter.totals and again["steps"] == 34 and again["calls"] == {"realism": 3, "consistency": 2}
    assert meter.generated == 4


def test_a_meter_continues_the_stored_totals():
    stored = empty_totals()
    stored.update(gen_seconds=2.0, steps=20, calls={"realism": 5}, score_seconds={"realism": 1.0})
    meter = CostMeter(stored)
    meter.measure([(Generated(np.ones((4, 4, 1), np.float32), seconds=1.0),
                    Scored({"realism": 2.0}, 2.0, None, 0.5, {"realism": 0.5}))], [10])
    assert stored["steps"] == 30 and stored["calls"] == {"realism": 6} and stored["gen_seconds"] == 3.0
    assert meter.generated == 1  # this process's count starts at 0, whatever the store holds


def test_cost_to_json_has_the_charged_and_spent_figures():
    cost = Cost(candidates=3, steps=30, scorer_calls={"realism": 3}, generated=2, reused=1, gen_seconds=0.123456,
                score_seconds=1 / 3)
    assert cost.to_json() == {"candidates": 3, "steps": 30, "scorer_calls": {"realism": 3}, "generated": 2,
                              "reused": 1, "gen_seconds": 0.1235, "score_seconds": 0.3333}
    out = cost.to_json()
    out["scorer_calls"]["realism"] = 0
    assert cost.scorer_calls == {"realism": 3}  # a copy
