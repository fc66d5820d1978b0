"""Progress on a terminal: a status while models load, a labelled bar per search group (contestant and budget)
with one rate and the best potential, left on screen when done; plain lines off a terminal."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from toy import ToyGenerator, ToyGeneratorParams

from eacps import Condition
from eacps.api import load_models
from eacps.engine import progress
from eacps.engine.engine import Engine, Job
from eacps.strategies.best_of_n import BestOfN
from eacps.strategies.eacps import EACPS
from eacps.strategies.tree_search import TreeSearch


def screen(raw: str) -> list[str]:
    """What a terminal shows after ``raw``: text, newlines, carriage returns, cursor-up and erase-line codes."""
    lines, row, col = [""], 0, 0
    for tok in re.findall(r"\x1b\[\??[0-9;]*[A-Za-z]|\r|\n|[^\x1b\r\n]+", raw):
        if tok == "\n":
            row, col = row + 1, 0
            lines += [""] * (row + 1 - len(lines))
        elif tok == "\r":
            col = 0
        elif tok.startswith("\x1b[") and tok.endswith("A"):
            row = max(0, row - int(tok[2:-1] or 1))
        elif tok == "\x1b[2K":
            lines[row] = ""
        elif not tok.startswith("\x1b"):
            lines[row] = lines[row][:col].ljust(col) + tok + lines[row][col + len(tok):]
            col += len(tok)
    return [x.rstrip() for x in lines if x.strip()]


@pytest.fixture
def terminal(monkeypatch) -> Console:
    con = Console(file=io.StringIO(), force_terminal=True, width=140, color_system=None)
    monkeypatch.setattr(progress, "make_console", lambda: con)
    return con


def _jobs() -> list[Job]:
    conds = [Condition(f"t{i}", prompt=f"toy {i}") for i in range(2)]
    return ([Job(c, BestOfN(budget=8), label="best-of-n") for c in conds]
            + [Job(c, EACPS(budget=20, seed=1), label="eacps") for c in conds])


def test_a_labelled_bar_per_search_group_with_one_rate_stays_on_screen(terminal, toy_potential, capsys):
    Engine(ToyGenerator(), toy_potential, progress=True).run_all(_jobs(), batch_size=4)
    shown = screen(terminal.file.getvalue())
    bars = {name: next(x for x in shown if x.startswith(name)) for name in ("best-of-n B=8", "eacps B=20")}
    assert len(shown) == 2, shown  # exactly the two bars, drawn last and kept (nothing erased them)
    assert "· 2 conditions" in bars["best-of-n B=8"] and "16/16" in bars["best-of-n B=8"]
    assert "40/40" in bars["eacps B=20"]
    for line in bars.values():
        assert len(re.findall(r"[0-9.]+ cand/s", line)) == 1 and "it/s" not in line  # one rate figure
        assert re.search(r"best \d+\.\d{3}", line) and "None" not in line
    assert "search(es)" not in terminal.file.getvalue()
    assert capsys.readouterr().err == ""  # on a terminal: bars, not the plain per-batch lines


def test_a_trajectory_search_fills_its_bar_in_candidate_equivalents(terminal, toy_potential):
    """tree-search stores its previews as rows too (more rows than its budget): the bar counts the budget spent,
    B·T steps, so it ends at exactly B of B."""
    gen = ToyGenerator(ToyGeneratorParams(stepping=True))
    (res,) = Engine(gen, toy_potential, progress=True).run_all([Job(Condition("t0", prompt="toy"), TreeSearch(budget=8),
                                                                    label="tree-search")], batch_size=4)
    assert len(res.history) > 8 and res.cost.steps == 8 * gen.default_steps
    (bar,) = screen(terminal.file.getvalue())
    assert bar.startswith("tree-search B=8 ") and " 8/8 " in bar


def test_the_status_shows_while_a_model_loads_and_goes(terminal, toy_potential):
    load_models(ToyGenerator(), toy_potential, progress=True)
    raw = terminal.file.getvalue()
    assert "loading generator toy…" in raw and "loading scorer toy-pixel (potential criterion realism)…" in raw
    assert screen(raw) == []  # a status, not a log: erased once loaded


def test_off_a_terminal_plain_lines_and_quiet_nothing(monkeypatch, toy_potential, capsys):
    monkeypatch.setattr(progress, "make_console", lambda: Console(file=io.StringIO()))  # not a terminal
    Engine(ToyGenerator(), toy_potential, progress=True).run_all(_jobs()[:1], batch_size=4)
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("eacps: t0/best-of-n/b8/s0: 8 candidates, 80 steps, best ")
    assert "\x1b" not in err and "cand/s" not in err
    load_models(ToyGenerator(), toy_potential, progress=True)
    Engine(ToyGenerator(), toy_potential, progress=False).run_all(_jobs()[:1], batch_size=4)
    assert capsys.readouterr().err == ""


def test_an_allocated_run_does_not_pile_up_a_bar_block_per_grant(terminal, toy_potential):
    """search_all runs one short run_all per grant: each round's bars vanish when it ends (they piled up, 13
    blocks for a budget of 30), so nothing of them is left on screen."""
    import eacps

    conds = [Condition(f"c{i}", prompt="toy") for i in range(3)]
    a = eacps.search_all(conds, generator=ToyGenerator(), potential=toy_potential, budget=30, progress=True)
    assert len(a.decisions) > 5  # many rounds
    assert "cand/s" in terminal.file.getvalue()  # bars were drawn
    assert not [x for x in screen(terminal.file.getvalue()) if "cand/s" in x]  # and none is left
