"""Summaries of a run store: each search against its own prior, means over tasks."""

from __future__ import annotations

from configs import toy, write
from runs import run_config


# -- priors (moved from tests/test_cli_defects.py) -------------------------------------------------------------------
def test_summary_compares_each_search_with_its_own_prior(tmp_path, toy_plugin):
    from eacps.analysis.summary import load_searches
    from eacps.store import read_only

    cfg = toy()
    del cfg["search"]
    cfg["searches"] = [{"strategy": "best-of-n", "label": f"p{s}", "budget": 4, "prior_seed": s} for s in (0, 1)]
    out = tmp_path / "run"
    assert run_config(write(tmp_path / "c.toml", cfg), out) == 0
    ro = read_only(out)
    recs = load_searches(ro)
    ro.close()
    assert len(recs) == 4
    for r in recs:
        assert r.prior.search == f"prior/{r.condition}/{r.strategy[1]}", (r.search, r.prior.search)
        assert r.prior.recipe.seed == int(r.strategy[1])
