"""eacps.allocation_log: reading where a cross-condition budget went. Every allocation log of a store by label, a
damaged one refused in one line naming its key, and the views of ``eacps show`` (heading, table of the last
reasons) and the report (one row per condition with its last reason)."""

from __future__ import annotations

import pytest

from eacps.allocation_log import (
    META_PREFIX,
    allocation_context,
    allocation_heading,
    format_allocation,
    stored_allocations,
)
from eacps.store import Store, StoreError, read_only


def log(**over) -> dict:
    """An allocation log of the shape ``eacps.allocate`` writes."""
    return {"objective": "worst", "label": "best-of-n+worst", "total_budget": 12, "batch_size": 2,
            "min_per_condition": 2, "max_per_condition": None, "stop": {"budget": 12},
            "rows": [{"condition": "a", "search": "s-a", "candidates": 8, "best": 0.25},
                     {"condition": "b", "search": "s-b", "candidates": 4, "best": None}],
            "decisions": [{"condition": "a", "reason": "first"}, {"condition": "b", "reason": "only one"},
                          {"condition": "a", "reason": "second"}, {"condition": "a", "reason": "among the lowest"}],
            **over}


def test_every_log_of_a_store_by_label(tmp_path):
    with Store.open(tmp_path / "run") as store:
        assert stored_allocations(store) == {}  # a run without an allocation
        store.set_meta(META_PREFIX + "one", log(label="one"))
        store.set_meta(META_PREFIX + "two", log(label="two", objective="mean"))
        store.set_meta("identity", {"generator": "g"})  # other meta is not an allocation
    with read_only(tmp_path / "run") as store:
        got = stored_allocations(store)
    assert sorted(got) == ["one", "two"] and got["two"]["objective"] == "mean" and got["one"] == log(label="one")


@pytest.mark.parametrize("damage", [
    {"label": 3}, {"total_budget": "12"}, {"rows": [{"condition": "a", "candidates": 1.5, "best": None}]},
    {"rows": [{"condition": "a", "candidates": 1, "best": "high"}]}, {"decisions": [{"condition": "a"}]},
    {"decisions": None},
])
def test_a_damaged_log_is_one_line_naming_its_key(tmp_path, damage):
    with Store.open(tmp_path / "run") as store:
        store.set_meta(META_PREFIX + "x", log(**damage))
        with pytest.raises(StoreError) as exc:
            stored_allocations(store)
    msg = str(exc.value)
    assert "\n" not in msg and "meta 'allocation/x' is not an allocation log" in msg


def test_the_heading_says_what_was_spent_of_what_and_why_it_stopped():
    assert allocation_heading(log()) == ("allocation 'best-of-n+worst': objective worst, 12 of 12 candidates, "
                                         "4 grants; stopped: {'budget': 12}")
    interrupted = allocation_heading(log(objective="threshold", threshold=0.5, stop={}))
    assert "objective threshold, τ = 0.5," in interrupted and interrupted.endswith("stopped: (interrupted)")


def test_the_table_shows_each_conditions_last_reasons():
    text = format_allocation(log(), last=2)
    head, *table = text.splitlines()
    assert head == allocation_heading(log())
    row_a = next(line for line in table if line.split()[0] == "a")
    assert "0.250" in row_a and "second | among the lowest" in row_a and "first" not in row_a  # the last two grants
    row_b = next(line for line in table if line.split()[0] == "b")
    assert " - " in row_b and "only one" in row_b  # no OK candidate yet: best "-"
    assert "first | second | among the lowest" in format_allocation(log(), last=3)


def test_the_reports_view_is_one_row_per_condition_with_its_last_reason():
    ctx = allocation_context(log())
    assert ctx["head"] == allocation_heading(log())
    assert allocation_context(log(objective="worst\nmore"))["head"] == "allocation 'best-of-n+worst': objective worst"
    assert ctx["rows"] == [{"condition": "a", "candidates": 8, "best": "0.250", "reason": "among the lowest"},
                           {"condition": "b", "candidates": 4, "best": "-", "reason": "only one"}]
    never = allocation_context(log(decisions=[]))
    assert [r["reason"] for r in never["rows"]] == ["", ""]  # a condition without a grant has no reason
