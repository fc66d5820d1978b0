"""examples/gaussian-mixture.toml through the commands the digits example goes through (issue 19): run, show,
report, serve (over HTTP), compare (with the gap to the optimum) and landscape --per-step, on a small copy."""

from __future__ import annotations

import json
import re
import threading
import tomllib
import urllib.request
from pathlib import Path

import pytest

from eacps import tomlw
from eacps.analysis import serve
from eacps.commands.cli import main

EXAMPLE = Path(__file__).parents[3] / "examples" / "gaussian-mixture.toml"


def small_example(tmp_path: Path, strategy: str = "tree-search", n: int = 2) -> Path:
    cfg = tomllib.loads(EXAMPLE.read_text())
    cfg["tasks"]["n"] = n
    cfg["search"].update(strategy=strategy, budget=6, batch_size=6, params={})
    path = tmp_path / "gm.toml"
    path.write_text(tomlw.dumps(cfg))
    return path


@pytest.fixture(scope="module")
def gm_run(tmp_path_factory) -> Path:
    """``eacps run`` of the small example (2 tasks, budget 6, tree-search)."""
    tmp = tmp_path_factory.mktemp("gm")
    run = tmp / "run"
    assert main(["run", str(small_example(tmp)), "--out", str(run), "--quiet"]) == 0
    return run


def test_example_runs_shows_and_reports(gm_run, capsys):
    assert main(["show", str(gm_run), "--tree"]) == 0
    out = capsys.readouterr().out
    searches = [line.split()[0] for line in out.splitlines() if "/tree-search/b6/s0" in line and "(" not in line]
    assert len(searches) == 2 and "renoise@" in out  # both conditions' searches, and the tree with its branches
    assert main(["report", str(gm_run)]) == 0
    html = (gm_run / "report.html").read_text()
    assert "Trajectory trees" in html and "gaussian-mixture" in html


def test_example_is_served(gm_run):
    """``eacps serve``'s server over the run: the page, the state (one best per condition, with its potential) and
    the best images, which are the testbed's encoded latents as PNG."""
    server = serve.make_server(gm_run, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"

    def get(path: str) -> tuple[bytes, str]:
        with urllib.request.urlopen(url + path, timeout=10) as r:
            return r.read(), r.headers["Content-Type"]

    try:
        page, ctype = get("/")
        assert ctype.startswith("text/html") and b"<html" in page.lower()
        body, ctype = get("/api/state")
        state = json.loads(body)
        assert ctype == "application/json" and state["kind"] == "run" and state["candidates"] >= 12
        assert state["criteria"] == ["consistency", "identity", "realism"]
        best = state["best"]
        assert len(best) == 2 and len({b["condition"] for b in best}) == 2  # one best per condition
        assert all(0 <= b["potential"] <= 65 for b in best)
        for b in best:
            png, ctype = get(b["image"])
            assert ctype == "image/png" and png[:8] == b"\x89PNG\r\n\x1a\n"
        assert state["trees"]  # tree-search's trees, as on the digits example
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_example_compare_prints_the_gap_to_the_optimum(tmp_path, capsys):
    """``eacps compare`` on the example: its table has the optimum column with a CI on every row, and compare.json
    the optimum of each evaluation task (the example's potential, the reference weights: at most 65)."""
    cfg = small_example(tmp_path, n=3)
    out = tmp_path / "cmp"
    assert main(["compare", str(cfg), "--strategies", "best-of-n,tree-search", "--budgets", "4", "--repeats", "2",
                 "--pool", "16", "--tune-tasks", "1", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "optimum gap closed [95% CI]" in text and "optimum: the generator's known optimum per task" in text
    for label in ("best-of-n", "tree-search"):
        row = next(line for line in text.splitlines() if line.split()[:1] == [label])
        assert re.search(r"[-\d.]+ \[[-\d.]+, [-\d.]+\]\s*$", row), row  # the fraction and its CI end the row
    saved = json.loads((out / "compare.json").read_text())
    per_task = saved["optimum"]["per_task"]
    assert len(per_task) == 2 and all(0 < v <= 65 + 1e-9 for v in per_task.values())
    for r in saved["table"]:
        g = r["optimum_gap"]
        assert g["ci95"][0] <= g["fraction"] <= g["ci95"][1]


def test_example_landscape_per_step(tmp_path, capsys):
    cfg = small_example(tmp_path)
    out = tmp_path / "land"
    assert main(["landscape", str(cfg), "--per-step", "--parents", "3", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    steps = json.loads((out / "landscape_steps.json").read_text())
    assert steps["parents"] == 3 and steps["steps"] == 50 and len(steps["rows"]) >= 40  # a row per step k
    assert (out / "report.html").exists() and "report:" in text


def test_make_demo_installs_the_testbed():
    """``make demo`` installs every distribution under plugins/, this one included, before running the demo."""
    import subprocess

    root = EXAMPLE.parents[1]
    lines = subprocess.run(["make", "-n", "-B", "demo"], cwd=root, capture_output=True, text=True, timeout=60,
                           check=True).stdout.splitlines()
    install = next(i for i, line in enumerate(lines) if "-e ./plugins/eacps-gaussian-mixture/" in line)
    assert "pip" in lines[install] and install < next(i for i, line in enumerate(lines) if "eacps demo" in line)
