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

from eacps.commands.cli import main
from eacps.config import ConfigError
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


@pytest.mark.slow
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
    # titled by what it serves; a legend entry per strategy; progress against the run's budget, phase and ETA
    assert "<title>eacps run: run</title>" in dom and '<h1 id="title">eacps run: run</h1>' in dom
    assert re.search(r'class="legend"[^>]*>best-of-n<', dom), "the curves carry a legend"
    prog = re.search(r'<span id="progress-text">([^<]*)</span>', dom).group(1)
    assert re.fullmatch(r"[\d.]+ / 600 best-of-N candidate equivalents · 1 searches · phase: best-of-n, budget 600 · "
                        r"ETA (\d+ h )?(\d+ min )?\d+ s", prog), prog
    src = re.search(r'<img class="cand" src="(/images/[0-9a-f]+\.png)"', dom).group(1)
    assert _get(url.rstrip("/") + src)[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    """A finished two-condition toy run (tests/toy.py), written in-process."""
    import toy

    from eacps import plugins

    tmp_path = tmp_path_factory.mktemp("serve-toy")
    plugins.register_plugin(toy)
    try:
        cfg = configs.write(tmp_path / "cfg.toml", configs.toy(budget=6))
        assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    finally:
        plugins.unregister_plugin(toy)
    return tmp_path / "run"


def test_serve_is_read_only_and_confined(toy_run):
    from runs import digest

    before = digest(toy_run)
    server, url = _serving(toy_run)
    try:
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(urllib.request.Request(url + "api/state", data=b"{}", method="POST"), timeout=5)
        assert exc.value.code == 501  # GET only
        for bad in ("images/../store.sqlite", "store.sqlite", "images/%2e%2e/store.sqlite", "api/nothing",
                    "images/../cfg.toml", "../cfg.toml"):
            with pytest.raises(urllib.error.HTTPError) as exc:
                _get(url + bad)
            assert exc.value.code == 404, bad
        state = json.loads(_get(url + "api/state"))
    finally:
        _stop(server)
    assert state["criteria"] == ["consistency", "realism"] and state["trees"] is None
    assert digest(toy_run) == before  # nothing written


def test_serve_without_a_store_is_one_line_exit_2(tmp_path, capsys):
    assert main(["serve", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("eacps: error: RUN_DIR: no run store"), err
    assert list(tmp_path.iterdir()) == []


def test_trajectory_trees_on_the_page(tmp_path, toy_plugin):
    """A tree-search run: /api/state carries its parent links and the page draws one dot per node."""
    import threading

    from eacps.analysis.serve import make_server, state

    configs.write(tmp_path / "tree.toml", configs.toy_stepping("tree-search", 12, batch_size=2))
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


# -- many requests on a large tree-search store (issue 23) -----------------------------------------------------------
@pytest.fixture(scope="module")
def big_tree(tmp_path_factory):
    """A real tree-search run of about 2000 candidates on the toy generator, a few deep trees (few roots)."""
    import toy

    import eacps
    from eacps import Condition
    from eacps.potential import Criterion, Potential

    run_dir = tmp_path_factory.mktemp("big") / "run"
    gen = toy.ToyGenerator(toy.ToyGeneratorParams(stepping=True))
    pot = Potential([Criterion("realism", toy.ToyScorer(), 4.0), Criterion("consistency", toy.ToyMeanScorer(), 1.0)])
    res = eacps.search(Condition("a", prompt="x"), generator=gen, potential=pot, strategy="tree-search",
                       params={"root_width": 0.01, "levels": [0.2, 0.4, 0.6, 0.8]}, budget=600, batch_size=64,
                       run_dir=run_dir)  # four levels: deep trees
    assert len(res.history) >= 2000
    return run_dir


def _serving(run_dir: Path, **kw):
    import threading

    from eacps.analysis.serve import make_server

    server = make_server(run_dir, port=0, **kw)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def _stop(server) -> None:
    server.shutdown()
    server.server_close()


def _timed_get(url: str) -> tuple[float, int, bytes]:
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return time.perf_counter() - t0, r.status, r.read()
    except urllib.error.HTTPError as exc:
        return time.perf_counter() - t0, exc.code, exc.read()


def test_state_of_2000_tree_search_candidates_is_fast(big_tree):
    """state() took 13.8 s on a 2002-candidate tree-search store (parent links compared every pair of nodes)."""
    from eacps.analysis.serve import state

    times = []
    for _ in range(5):  # the least disturbed of 5 (the machine may be shared)
        t0 = time.perf_counter()
        s = state(big_tree)
        times.append(time.perf_counter() - t0)
    (nodes,) = s["trees"].values()
    assert s["candidates"] >= 2001 and len(nodes) >= 2000
    assert sum(n["parent"] is not None for n in nodes) >= len(nodes) - 10  # a few roots, deep trees
    # the bound is 0.5 s (benchmarks/store_scale.py measures it: 0.07-0.12 s idle); here a loaded CI
    # machine is allowed 4x that, still far below the 13.8 s of the quadratic parent links this guards against
    assert min(times) < 2.0, times


def test_serve_answers_300_requests_50_at_a_time(big_tree):
    """``serve`` stopped answering after 300 GETs, 50 at a time, on such a store; every answer now comes within
    2 s, and the unchanged store is read once for them all."""
    from concurrent.futures import ThreadPoolExecutor

    server, url = _serving(big_tree)
    try:
        paths = ["api/state"] * 250 + [""] * 25 + ["images/" + "0" * 20 + ".png"] * 25
        t0 = time.perf_counter()
        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(_timed_get, [url + p for p in paths]))
        wall = time.perf_counter() - t0
        slowest = max(t for t, _, _ in answers)
        codes = sorted({c for _, c, _ in answers})
        cache = server.RequestHandlerClass.cache
        state = json.loads(answers[0][2])
    finally:
        _stop(server)
    assert codes == [200, 404], codes
    assert state["candidates"] >= 2001
    assert slowest < 5.0, (slowest, wall)  # 2 s is the bound (0.1-0.3 s idle, store_scale.py); a hang was 30 s
    assert cache.computed == 1  # one read of the store for 250 polls


def test_serve_state_follows_store_changes(tmp_path, toy_plugin):
    """The cached state is read again once a batch lands (a new store version)."""
    cfg = configs.write(tmp_path / "cfg.toml", configs.toy(budget=4))
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    server, url = _serving(tmp_path / "run")
    try:
        first = json.loads(_get(url + "api/state"))
        assert json.loads(_get(url + "api/state"))["candidates"] == first["candidates"]
        db = sqlite3.connect(tmp_path / "run" / "store.sqlite")  # a new row, as a run's next batch would add
        db.execute("INSERT INTO candidates (search, seq, role, condition, strategy, recipe, steps, cache_key, status, "
                   "potential, reason, scores, image, session, created) SELECT search, seq + 100, role, condition, "
                   "strategy, recipe, steps, cache_key, status, potential, reason, scores, image, session, created "
                   "FROM candidates WHERE id = 3")
        db.commit()
        db.close()
        assert json.loads(_get(url + "api/state"))["candidates"] == first["candidates"] + 1
    finally:
        _stop(server)



def test_show_tree_and_report_of_2000_tree_search_candidates(big_tree, tmp_path, capsys):
    """``report`` took 46 s and ``show --tree`` 26 s on such a store; both read each search's links and charges
    once now (generous bound: 15 s each on a loaded machine; benchmarks/store_scale.py has the figures)."""
    t0 = time.perf_counter()
    assert main(["show", str(big_tree), "--tree"]) == 0
    show_s = time.perf_counter() - t0
    out = capsys.readouterr().out
    assert out.count("\n├─ ") + out.count("\n└─ ") + out.count("│") > 150 and "first 200 lines shown" in out
    t0 = time.perf_counter()
    assert main(["report", str(big_tree), "--output", str(tmp_path / "r.html")]) == 0
    report_s = time.perf_counter() - t0
    html = (tmp_path / "r.html").read_text()
    assert html.count("<circle class='node'") == 120 and "id='curves'" in html
    assert show_s < 15 and report_s < 15, (show_s, report_s)


def test_cost_curves_hold_each_searchs_best_at_each_cost(big_tree):
    """The report's cost curves (a pointer per search now, every earlier point scanned before) against their
    definition: at each cost, the mean over searches of the last best-so-far at or below it."""
    from eacps.analysis.report import _charged, cost_curves
    from eacps.analysis.summary import load_searches
    from eacps.store import read_only

    store = read_only(big_tree)
    try:
        recs = load_searches(store)
    finally:
        store.close()
    recs = recs + [r for r in recs]  # two searches of one label: the mean and band over searches
    (curve,) = cost_curves(recs, {}).values()
    pts = []
    for r in recs[:1]:
        cost, seen = 0.0, []
        for c, steps, best in zip(r.candidates, r.charges, r.curve, strict=True):
            cost += _charged(c, steps, {})
            seen.append((cost, best))
        pts.append(seen)
    grid = sorted({x for x, _ in pts[0]})
    expected = [next((b for cx, b in reversed(pts[0]) if cx <= x and b is not None), None) for x in grid]
    assert [(x, m) for x, m, _, _ in curve] == [(x, b) for x, b in zip(grid, expected, strict=True) if b is not None]
    assert all(lo == m == hi for _, m, lo, hi in curve)  # two equal searches: a band of zero width

# -- security --------------------------------------------------------------------------------------------------------
def test_serve_checks_the_host_header(tmp_path, toy_plugin):
    """DNS rebinding: a page of evil.example resolving to 127.0.0.1 sends ``Host: evil.example``: refused."""
    import http.client

    cfg = configs.write(tmp_path / "cfg.toml", configs.toy(budget=4))
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    server, _ = _serving(tmp_path / "run", allow_hosts=("eacps.lan",))
    port = server.server_address[1]

    def ask(host: str | None, path: str = "/api/state") -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.putrequest("GET", path, skip_host=True)
            if host is not None:
                conn.putheader("Host", host)
            conn.endheaders()
            return conn.getresponse().status
        finally:
            conn.close()

    try:
        for good in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}", "eacps.lan:80"):
            assert ask(good) == 200, good
        for bad in ("evil.example", f"evil.example:{port}", f"127.0.0.1.evil.example:{port}", "10.0.0.1", None, ""):
            assert ask(bad) == 421, bad
            assert ask(bad, "/") == 421, bad
    finally:
        _stop(server)


def test_allowed_hosts_of_a_bind_address():
    from eacps.analysis.serve import allowed_hosts, host_ok

    assert host_ok("192.168.1.5:8000", allowed_hosts("192.168.1.5"))
    assert not host_ok("localhost:8000", allowed_hosts("192.168.1.5"))
    assert host_ok("10.1.2.3:8000", allowed_hosts("0.0.0.0")) and host_ok("localhost", allowed_hosts("0.0.0.0"))
    assert not host_ok("evil.example", allowed_hosts("0.0.0.0"))


def test_serve_never_renders_an_image_from_elsewhere(tmp_path, toy_plugin):
    """A tampered ``image`` column (``/127.0.0.1:9/track.png`` became ``//127.0.0.1:9/track.png``, an off-origin
    <img>; ``../../etc/hostname``): /api/state refuses the store in one line, naming the row; the image route
    serves only the store's own names from images/."""
    cfg = configs.write(tmp_path / "cfg.toml", configs.toy(budget=4))
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    server, url = _serving(out)
    try:
        assert all(r["image"].startswith("/images/") for r in json.loads(_get(url + "api/state"))["rows"])
        for tampered in ("/127.0.0.1:9/track.png", "../../../../etc/hostname", "images/../../../etc/hostname"):
            db = sqlite3.connect(out / "store.sqlite")
            db.execute("UPDATE candidates SET image = ? WHERE id = 2", (tampered,))
            db.commit()
            db.close()
            _, code, body = _timed_get(url + "api/state")
            assert code == 503 and "127.0.0.1:9" not in body.decode().replace(repr(tampered), ""), body
            err = json.loads(body)["error"]
            assert "candidate row 2, field image" in err and "\n" not in err, err
        (tmp_path / "outside.png").write_bytes(b"\x89PNG\r\n\x1a\n")
        name = "0" * 20 + ".png"
        (out / "images" / name).symlink_to(tmp_path / "outside.png")
        for path in ("images/" + name, "images/../outside.png", "images/%2e%2e/outside.png", "store.sqlite"):
            assert _timed_get(url + path)[1] == 404, path
    finally:
        _stop(server)


# -- errors are one line ---------------------------------------------------------------------------------------------
def test_serve_a_store_overwritten_while_serving(tmp_path, toy_plugin, capfd):
    """The store replaced by garbage under a running server: /api/state answers 503 with one line, the server goes
    on (no traceback), and answers 200 again once the store is back."""
    cfg = configs.write(tmp_path / "cfg.toml", configs.toy(budget=4))
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    good = (out / "store.sqlite").read_bytes()
    server, url = _serving(out)
    try:
        assert _timed_get(url + "api/state")[1] == 200
        (out / "store.sqlite").write_bytes(bytes(range(256)) * (len(good) // 256))
        _, code, body = _timed_get(url + "api/state")
        assert code == 503 and "damaged or not an eacps run store" in json.loads(body)["error"], body
        assert _timed_get(url)[1] == 200  # the page still loads and shows the error
        tmp = out / "store.new"
        tmp.write_bytes(good)
        tmp.replace(out / "store.sqlite")  # restored (another inode)
        assert _timed_get(url + "api/state")[1] == 200
    finally:
        _stop(server)
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("port", ["99999", "-1", "65536"])
def test_serve_port_out_of_range_is_one_line(tmp_path, toy_plugin, capsys, port):
    cfg = configs.write(tmp_path / "cfg.toml", configs.toy(budget=4))
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["serve", str(tmp_path / "run"), "--port", port]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--port" in err[0] and "0<=x<=65535" in err[0], err


def test_make_server_refuses_a_port_out_of_range(tmp_path, toy_plugin):
    from eacps.analysis.serve import make_server

    cfg = configs.write(tmp_path / "cfg.toml", configs.toy(budget=4))
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    with pytest.raises(ConfigError, match="--port: must be between 0 and 65535, got 99999"):
        make_server(tmp_path / "run", port=99999)


def test_a_client_that_goes_away_prints_nothing(toy_run):
    """Clients closing early (before reading, mid-body, with a reset, mid-request) leave the server's console
    quiet: no BrokenPipeError or ConnectionResetError traceback, nothing on stderr at all."""
    import socket
    import struct

    port = configs.unused_port()
    serve = subprocess.Popen([sys.executable, "-m", "eacps", "serve", str(toy_run), "--port", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait(lambda: _reachable(port), 60, "eacps serve")
        request = f"GET {{}} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
        for path in ["/", "/api/state"] * 10:
            for how in ("close", "read-some", "reset", "partial"):
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(b"GET / HT" if how == "partial" else request.format(path).encode())
                if how == "read-some":
                    s.recv(16)
                if how == "reset":
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
        assert _get(f"http://127.0.0.1:{port}/api/state"), "still serving"
    finally:
        serve.terminate()
        _out, err = serve.communicate(timeout=30)
    assert err.strip() == "", err[-3000:]


def _reachable(port: int) -> bool:
    try:
        return bool(_get(f"http://127.0.0.1:{port}/api/state"))
    except OSError:
        return False


def test_a_comparison_is_served_as_one(tmp_path, toy_plugin):
    """On a comparison's store the page's state names it a comparison and counts its progress against everything
    compare plans: the reference pool and every contestant at every budget, per task."""
    from eacps.analysis.compare import run_compare
    from eacps.analysis.serve import state

    cfg = configs.toy()  # two conditions
    del cfg["search"]
    configs.write(tmp_path / "c.toml", cfg)
    run_compare(tmp_path / "c.toml", tmp_path / "cmp", strategies="eacps,best-of-n", budgets="4,8", repeats=1, pool=8)
    s = state(tmp_path / "cmp")
    assert s["kind"] == "compare" and s["title"] == "eacps compare: cmp"
    assert s["progress"]["total"] == 2 * (8 + 2 * (4 + 8)) == s["progress"]["done"]
    assert s["progress"]["phase"] == "finished" and s["progress"]["searches"] == 2 * (1 + 2 * 2)
