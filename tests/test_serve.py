"""``eacps serve``: the live page in headless Chromium while a real ``eacps run`` writes to the same store.

The page is loaded once; it polls ``/api/state`` and must show candidates that land after it was loaded,
without a reload by the test. Needs Debian's ``chromium`` (``make browser``), like test_report_browser.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import configs
import pytest
from test_report_browser import run_chromium

from eacps.cli import main
from eacps.store import read_only

CONFIG = {
    "generator": {"name": "digits", "params": {"steps": 15}},
    "potential": {"criteria": {"consistency": {"scorer": "digits-consistency"},
                               "realism": {"scorer": "digits-realism"}}},
    "search": {"strategy": "best-of-n", "budget": 600, "batch_size": 2},
    "conditions": [{"id": "three", "class_label": 3}],
}


def _count(run_dir: Path) -> int:
    try:
        store = read_only(run_dir)
    except FileNotFoundError:
        return 0
    try:
        return len(store.candidates())
    except sqlite3.OperationalError:  # created, schema not written yet
        return 0
    finally:
        store.close()


def _wait(cond, timeout: float, what: str) -> None:
    t0 = time.time()
    while not cond():
        if time.time() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read()


@pytest.fixture(scope="module")
def live_run(tmp_path_factory):
    """A real ``eacps run`` subprocess writing a long search, and ``eacps serve`` over its run directory."""
    tmp_path = tmp_path_factory.mktemp("serve")
    configs.write(tmp_path / "live.toml", CONFIG)
    run_dir = tmp_path / "run"
    run = subprocess.Popen([sys.executable, "-m", "eacps", "run", str(tmp_path / "live.toml"), "--out", str(run_dir),
                            "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    serve = None
    try:
        _wait(lambda: _count(run_dir) >= 3 or run.poll() is not None, 120, "the run's first batch")
        assert run.poll() is None, f"the run ended early: {run.stderr.read()}"
        port = configs.unused_port()
        serve = subprocess.Popen([sys.executable, "-m", "eacps", "serve", str(run_dir), "--port", str(port)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{port}/"

        def up() -> bool:
            assert serve.poll() is None, serve.stderr.read()
            try:
                return bool(_get(url + "api/state"))
            except OSError:
                return False

        _wait(up, 60, "eacps serve")
        yield url, run, run_dir
    finally:
        for p in (serve, run):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(timeout=30)


def test_page_shows_new_candidates_without_reload(live_run, tmp_path):
    url, _run, _run_dir = live_run
    first = json.loads(_get(url + "api/state"))
    proc = run_chromium(["--virtual-time-budget=60000", "--dump-dom", url], tmp_path / "profile")
    dom = proc.stdout
    seen = [int(x) for x in re.findall(r"<li>(\d+)</li>", dom)]
    polls = int(re.search(r'data-polls="(\d+)"', dom).group(1))
    assert len(seen) >= 2, f"the page did not update ({polls} polls; counts seen {seen}): {proc.stderr[-1500:]}"
    assert seen == sorted(seen) and seen[-1] > seen[0] >= first["candidates"], seen
    # what the page shows at the end: its table rows are real candidates of the store, newest first
    ids = [int(x) for x in re.findall(r'<tr data-id="(\d+)"', dom)]
    assert ids and ids == sorted(ids, reverse=True)
    assert ids[0] > first["last_id"]
    assert dom.count('class="cand"') == 1  # the best image of the one condition
    assert re.search(r'<polyline[^>]*points="[^"]+"', dom)
    assert "consistency" in dom and "realism" in dom
    src = re.search(r'<img class="cand" src="(/images/[0-9a-f]+\.png)"', dom).group(1)
    assert _get(url.rstrip("/") + src)[:8] == b"\x89PNG\r\n\x1a\n"


def test_serve_is_read_only_and_confined(live_run):
    url, _run, _run_dir = live_run
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(urllib.request.Request(url + "api/state", data=b"{}", method="POST"), timeout=5)
    assert exc.value.code == 501  # GET only
    for bad in ("images/../store.sqlite", "store.sqlite", "images/%2e%2e/store.sqlite", "api/nothing"):
        with pytest.raises(urllib.error.HTTPError) as exc:
            _get(url + bad)
        assert exc.value.code == 404
    state = json.loads(_get(url + "api/state"))
    assert state["criteria"] == ["consistency", "realism"] and state["trees"] is None


def test_serve_without_a_store_is_one_line_exit_2(tmp_path, capsys):
    assert main(["serve", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("eacps: error: RUN_DIR: no run store"), err
    assert list(tmp_path.iterdir()) == []


def test_trajectory_trees_on_the_page(tmp_path):
    """A tree-search run: /api/state carries its parent links and the page draws one dot per node."""
    import threading

    from eacps.serve import make_server, state

    tree = configs.edit(configs.edit(CONFIG, "search.strategy", "tree-search"), "search.budget", 12)
    configs.write(tmp_path / "tree.toml", tree)
    assert main(["run", str(tmp_path / "tree.toml"), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    trees = state(tmp_path / "run")["trees"]
    (nodes,) = trees.values()
    ids = [n["id"] for n in nodes]
    assert ids == sorted(ids) and nodes[0]["parent"] is None
    linked = [n for n in nodes if n["parent"] is not None]
    assert linked and all(n["parent"] in ids[: ids.index(n["id"])] for n in linked)  # an earlier node
    assert any(n["until"] is not None for n in nodes), "a tree search previews part-way trajectories"
    report = (tmp_path / "run" / "report.html").read_text()  # eacps run wrote it: the same tree, drawn statically
    assert report.count("<svg xmlns='http://www.w3.org/2000/svg'") >= 2 and "class='tree'" in report
    assert report.count("<circle class='node'") == min(len(nodes), 120)
    server = make_server(tmp_path / "run", port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        dom = run_chromium(["--virtual-time-budget=5000", "--dump-dom", url], tmp_path / "profile").stdout
    finally:
        server.shutdown()
        server.server_close()
    assert '<div id="trees-section">' in dom, "the trees section is shown"
    assert dom.count('class="node"') == min(len(nodes), 120)
    assert dom.count("<line") >= len(linked) + 2  # the tree's edges, beside the curve plot's two axes
