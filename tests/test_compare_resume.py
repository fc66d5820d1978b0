"""Resuming ``eacps compare`` into the same --out: the same code replays the stored searches and computes nothing;
code whose defaults changed since the run was stored is refused before any compute by the stored resolved
parameters (ConfigError), and where those cannot tell (a store written before they were stored, or a change in a
strategy's code that its parameters do not show) by the replay itself: the search asks other recipes at stored seqs,
``ReplayError`` (exit 2, one line), nothing written. It used to fail with "another process wrote the same
candidates"."""

from __future__ import annotations

import configs
import pytest
from configs import n_candidates

from eacps.analysis.compare import run_compare
from eacps.commands.cli import main
from eacps.config import ConfigError
from eacps.store import ReplayError, Store
from eacps.strategies.zero_order import ZeroOrder, ZeroOrderParams

CFG = {
    "tasks": {"name": "toy", "n": 2},
    "generator": {"name": "toy"},
    "potential": {"criteria": {"realism": {"scorer": "toy-pixel"}}},
}
ARGS = {"strategies": "zero-order", "budgets": "8", "repeats": 1, "pool": 4}


class Changed(ZeroOrderParams):
    threshold: float = 0.8  # a default changed after the run was stored (it was 0.9): other neighbours


def test_a_compare_resumed_by_code_whose_defaults_changed_is_refused_and_writes_nothing(tmp_path, toy_plugin,
                                                                                        monkeypatch, capsys):
    cfg, out = configs.write(tmp_path / "c.toml", CFG), tmp_path / "cmp"
    run_compare(cfg, out, **ARGS)
    n = n_candidates(out)
    assert run_compare(cfg, out, **ARGS)["generated"] == 0  # the same code: resumed, nothing computed
    monkeypatch.setattr(ZeroOrder, "Params", Changed)
    with pytest.raises(ConfigError, match=r"^--strategies: 'zero-order' was run in .* with other settings"):
        run_compare(cfg, out, **ARGS)  # the stored resolved parameters differ: refused before any compute
    with Store.open(out) as store:  # as a store from before the resolved parameters: only the replay can tell
        store.set_meta("compare/contestants", {k: {f: x for f, x in v.items() if f != "resolved"}
                                               for k, v in store.get_meta("compare/contestants").items()})
    with pytest.raises(ReplayError) as exc:
        run_compare(cfg, out, **ARGS)
    msg = str(exc.value)
    # seq 0 is the round's base (a fresh seed, unchanged); seq 1 its first neighbour, drawn at the new threshold
    assert "search 'toy0-0/zero-order/B8/r0/per-task' asks {" in msg and "at seq 1, where the store holds {" in msg
    assert "the code or its defaults (a strategy's parameters) changed since this run was stored" in msg
    assert n_candidates(out) == n  # nothing was written
    args = ["compare", str(cfg), "--out", str(out), "--strategies", "zero-order", "--budgets", "8", "--repeats", "1",
            "--pool", "4", "--quiet"]
    capsys.readouterr()
    assert main(args) == 2  # the CLI: one line, exit 2
    err = capsys.readouterr().err
    assert err.startswith("eacps: error: ") and err.count("\n") == 1 and "at seq 1, where the store holds" in err
    assert n_candidates(out) == n
