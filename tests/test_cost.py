"""The cost model: unit costs measured from the store's totals or set in the config, and one figure from them."""

from __future__ import annotations

import pytest

from eacps.cost import META_KEY, CostConfig, accumulate, empty_totals, figure, unit_costs


class Meta:
    """What ``unit_costs`` reads from a store: its meta."""

    def __init__(self, totals=None):
        self.meta = {} if totals is None else {META_KEY: totals}

    def get_meta(self, key, default=None):
        return self.meta.get(key, default)


def totals():
    return accumulate(empty_totals(), gen_seconds=2.0, steps=40, calls={"realism": 4, "judge": 2},
                      score_seconds={"realism": 1.0, "judge": 3.0})


def test_accumulate_adds_to_running_totals():
    tot = totals()
    accumulate(tot, gen_seconds=1.0, steps=10, calls={"realism": 1}, score_seconds={"realism": 0.5})
    assert tot == {"gen_seconds": 3.0, "steps": 50, "calls": {"realism": 5, "judge": 2},
                   "score_seconds": {"realism": 1.5, "judge": 3.0}}


def test_measured_unit_costs_are_seconds_per_step_and_per_call():
    units = unit_costs(Meta(totals()))
    assert units == {"kind": "measured", "seconds_per_step": 0.05, "seconds_per_call": {"realism": 0.25, "judge": 1.5}}
    assert figure(100, {"realism": 4, "judge": 2}, units) == pytest.approx(100 * 0.05 + 4 * 0.25 + 2 * 1.5)


def test_config_unit_costs_win_and_a_partial_config_is_mixed():
    full = unit_costs(Meta(totals()), CostConfig(seconds_per_step=1.0, seconds_per_call={"realism": 2.0, "judge": 9.0}))
    assert full == {"kind": "config", "seconds_per_step": 1.0, "seconds_per_call": {"realism": 2.0, "judge": 9.0}}
    mixed = unit_costs(Meta(totals()), CostConfig(seconds_per_call={"judge": 9.0}))
    assert mixed["kind"] == "mixed" and mixed["seconds_per_step"] == 0.05
    assert mixed["seconds_per_call"] == {"realism": 0.25, "judge": 9.0}


def test_no_measurement_gives_no_figure():
    units = unit_costs(Meta())
    assert units["seconds_per_step"] is None and units["seconds_per_call"] == {}
    assert figure(10, {}, units) is None


def test_negative_unit_costs_are_refused():
    with pytest.raises(ValueError, match="seconds_per_step"):
        CostConfig(seconds_per_step=-1.0)
