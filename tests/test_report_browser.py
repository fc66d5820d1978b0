"""The HTML report in a real browser: headless Chromium loads it, every image decodes, the tables are
there, nothing is fetched from outside the file, and the screenshot shows something.

Needs Debian's ``chromium`` (``.ci/run`` installs it). Missing Chromium is a failure, not a skip.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import configs
import numpy as np
import pytest
from PIL import Image

CHECK_ID = "eacps-browser-check"
# Runs after every resource of the page has loaded, and writes what it found into the DOM for --dump-dom.
CHECK_SCRIPT = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const external = [...document.querySelectorAll('[src],[href]')]
    .map(e => e.getAttribute('src') || e.getAttribute('href'))
    .filter(u => !(u.startsWith('data:') || u.startsWith('#')));
  const r = {images: imgs.length,
             broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0 && i.naturalHeight > 0)).map(i => i.alt),
             tables: [...document.querySelectorAll('table')].map(t => [t.id, t.rows.length]),
             svgs: [...document.querySelectorAll('svg')].map(s => s.getBoundingClientRect().width),
             external: external,
             linked: imgs.filter(i => i.closest('a')).length,
             dangling: imgs.filter(i => i.closest('a')).map(i => i.closest('a').getAttribute('href'))
               .filter(h => !h.startsWith('#') || !document.getElementById(h.slice(1))),
             json_cells: [...document.querySelectorAll('td')].map(td => td.textContent).filter(t => /[{}"]/.test(t)),
             headers: Object.fromEntries([...document.querySelectorAll('table')]
               .map(t => [t.id, [...t.rows[0].cells].map(c => c.textContent)])),
             budgets: [...document.querySelectorAll('#summary tr')].slice(1).map(r => r.cells[1].textContent),
             bands: [...document.querySelectorAll('svg polygon.band')].map(p => p.closest('svg').id),
             xlabels: [...document.querySelectorAll('svg')].map(s => s.querySelector('text[text-anchor=middle]')
               ?.textContent || ''),
             // every pair of labels in one plot whose rendered boxes intersect (by more than half a pixel)
             overlaps: [...document.querySelectorAll('svg')].flatMap(s => {
               const boxes = [...s.querySelectorAll('text')].map(t => [t.textContent, t.getBoundingClientRect()]);
               const hit = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 0.5 &&
                                     Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 0.5;
               return boxes.flatMap(([ta, a], i) => boxes.slice(i + 1).filter(([, b]) => hit(a, b))
                 .map(([tb]) => `${s.id}: "${ta}" / "${tb}"`));
             }),
             xticks: Object.fromEntries([...document.querySelectorAll('svg.plot')]
               .map(s => [s.id, [...s.querySelectorAll('text.xtick')].map(t => t.textContent)])),
             method: document.getElementById('method')?.textContent || '',
             toc: [...document.querySelectorAll('nav.toc a')].map(a => [a.textContent,
               !!document.getElementById(a.getAttribute('href').slice(1))]),
             // the rightmost point of each line of the best-so-far plot, as a fraction of the plot's width
             reach: Object.fromEntries(['contestant', 'reference'].map(k => [k,
               Math.max(-1, ...[...document.querySelectorAll(`svg#curves polyline.${k}`)].flatMap(p =>
                 p.getAttribute('points').split(' ').map(q => +q.split(',')[0])))
               / (+document.querySelector('svg#curves')?.getAttribute('width') || 1)])),
             trees: [...document.querySelectorAll('h3.tree')].map(h => h.textContent),
             rows: Object.fromEntries([...document.querySelectorAll('table')].map(t => [t.id,
               [...t.rows].slice(1).map(r => [...r.cells].map(c => c.textContent))])),
             height: document.documentElement.scrollHeight};
  const pre = document.createElement('pre');
  pre.id = 'CHECK_ID';
  pre.textContent = JSON.stringify(r);
  document.body.appendChild(pre);
});
</script>""".replace("CHECK_ID", CHECK_ID)


def chromium() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and Path("/usr/bin/chromium").exists():
        path = "/usr/bin/chromium"
    if path is None:
        pytest.fail(
            "headless Chromium is needed for the report test and was not found: install it with "
            "`apt-get update && apt-get install -y chromium` (.ci/run does), or set CHROMIUM=/path/to/it"
        )
    return path


def run_chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def browser_check(html: Path, tmp: Path) -> dict:
    """Load a copy of ``html`` with the check script injected; return what the script found."""
    page = tmp / f"check-{html.parent.name}-{html.name}"
    text = html.read_text()
    assert "</body>" in text
    page.write_text(text.replace("</body>", CHECK_SCRIPT + "</body>"))
    proc = run_chromium(["--virtual-time-budget=10000", "--dump-dom", page.as_uri()], tmp / "profile")
    m = re.search(rf'<pre id="{CHECK_ID}">(.*?)</pre>', proc.stdout, flags=re.S)
    assert m, f"the check script did not run (chromium rc={proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(m.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))


def screenshot(html: Path, tmp: Path) -> np.ndarray:
    shot = tmp / f"{html.parent.name}.png"
    proc = run_chromium(
        ["--hide-scrollbars", "--window-size=1200,1600", f"--screenshot={shot}", html.as_uri()], tmp / "profile"
    )
    assert shot.exists(), f"no screenshot (chromium rc={proc.returncode}): {proc.stderr[-2000:]}"
    return np.asarray(Image.open(shot).convert("RGB"))


def assert_nontrivial(img: np.ndarray) -> None:
    assert img.shape[0] >= 800 and img.shape[1] >= 1000, img.shape
    ink = (img.min(axis=2) < 200).mean()  # fraction of pixels that are not (near) white
    colors = len(np.unique(img.reshape(-1, 3), axis=0))
    assert 0.01 < ink < 0.9, f"screenshot looks blank or flooded: {ink:.3f} of pixels inked"
    assert colors > 20, f"screenshot has only {colors} colours"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A tiny demo run and a tiny comparison, each with its report.html."""
    import eacps_digits

    from eacps.analysis.compare import run_compare
    from eacps.analysis.report import write_report
    from eacps.commands.demo import run_demo

    tmp = tmp_path_factory.mktemp("reports")
    run_demo(tmp / "demo", n_tasks=2, budget=6, progress=False, echo=lambda *a: None)
    criteria = ("consistency", "realism", "identity")
    tiny = {
        "generator": {"name": "digits", "params": {"steps": 6}},
        "potential": {"criteria": {name: {"scorer": f"digits-{name}"} for name in criteria}},
        "conditions": [{"id": c.id, "class_label": c.class_label,
                        "extra": {"reference_index": c.extra["reference_index"]}} for c in eacps_digits.tasks(2)],
    }
    configs.write(tmp / "tiny.toml", tiny)
    run_compare(tmp / "tiny.toml", tmp / "compare", strategies="eacps,best-of-n", budgets="4,8", repeats=1, pool=16)
    write_report(tmp / "compare", title="eacps compare")
    return {"demo": tmp / "demo" / "report.html", "compare": tmp / "compare" / "report.html", "tmp": tmp}


@pytest.mark.slow
@pytest.mark.parametrize("kind, tables", [("demo", {"summary"}), ("compare", {"summary", "compare"})])
def test_report_renders_in_chromium(runs, kind, tables, tmp_path):
    report = runs[kind]
    r = browser_check(report, tmp_path)
    # per task (2): the reference image (demo tasks carry one; the compare config names a reference_index
    # only), the prior, the best of each search label of the summary table (3 contestants in the demo; 2
    # strategies x 2 budgets and the best-of-N reference pool in the comparison), and the top-5 grid; every
    # image in the HTML must have been decoded by the browser
    labels = dict(r["tables"])["summary"] - 1
    assert labels == (3 if kind == "demo" else 5), r["tables"]
    expected_images = 2 * ((1 if kind == "demo" else 0) + 1 + labels + 5)
    assert r["images"] == expected_images == report.read_text().count("<img "), r
    assert r["broken"] == [], f"images that did not decode: {r['broken']}"
    ids = {tid: rows for tid, rows in r["tables"]}
    assert tables <= set(ids), f"missing tables: {tables - set(ids)}"
    assert all(ids[t] >= 2 for t in tables), f"a table has no data rows: {ids}"
    assert r["svgs"] and all(w > 100 for w in r["svgs"]), f"plots missing or collapsed: {r['svgs']}"
    assert r["external"] == [], f"the report is not self-contained: {r['external']}"
    # each image but the references links to its recipe entry, which exists in the page
    assert r["linked"] == expected_images - (2 if kind == "demo" else 0) and r["dangling"] == [], r
    assert r["json_cells"] == [], f"raw JSON in table cells: {r['json_cells']}"
    text = report.read_text()
    assert all(text.count(f"id=\"{t}\"") == 1 for t in tables), "each table once"
    assert "<pre>" not in text.split("Recipes</h2>")[0], "no preformatted copy of a table"
    for t in tables:  # one column per criterion
        assert {f"{k} calls" for k in ("consistency", "realism", "identity")} <= set(r["headers"][t]), r["headers"]
    # the budget each search was given, not the candidates it asked
    budgets = {"6"} if kind == "demo" else {"4", "8", str(json.loads((report.parent / "compare.json").read_text())
                                                          ["pool"]["size"])}
    assert set(r["budgets"]) == budgets, r["budgets"]
    assert "curves" in r["bands"] and all("charged" in x for x in r["xlabels"] if x), r["xlabels"]
    if kind == "compare":
        assert "scaling" in r["bands"], "the scaling plot has CI bands"
    assert "Cost model (measured in this run):" in text and "per denoising step" in text
    assert_nontrivial(screenshot(report, tmp_path))


def test_a_recipe_snippet_regenerates_its_image(runs):
    """The code shown under an image regenerates that image (digits: to the same 8-bit picture)."""
    import html as htmllib

    from eacps.store import load_png

    text = runs["compare"].read_text()  # its config names the generator (the demo's names a preset)
    entry = re.search(r'<div class="recipe" id="(c\d+)">.*?<pre>(.*?)</pre>', text.split("Recipes</h2>")[1], re.S)
    anchor, code = entry.group(1), htmllib.unescape(entry.group(2))
    ns: dict = {}
    exec(code, ns)
    img = re.search(rf'<a href="#{anchor}"[^>]*><img class="cand" alt="[^"]*" src="data:image/png;base64,([^"]+)"',
                    text).group(1)
    (runs["tmp"] / "shown.png").write_bytes(__import__("base64").b64decode(img))
    shown = load_png(runs["tmp"] / "shown.png")
    assert np.abs(np.asarray(ns["image"], dtype=np.float32) - shown).max() <= 1.0 / 255 + 1e-6


def test_the_check_catches_a_broken_image(runs, tmp_path):
    """The browser check is able to fail: a report with one undecodable image is caught."""
    bad = tmp_path / "bad" / "report.html"
    bad.parent.mkdir()
    text = runs["demo"].read_text()
    i = text.index('src="data:image/png;base64,') + len('src="data:image/png;base64,')
    bad.write_text(text[:i] + "AAAA" + text[i + 40 :])
    r = browser_check(bad, tmp_path)
    assert len(r["broken"]) == 1, r


@pytest.fixture(scope="module")
def trajectory_compare(runs) -> Path:
    """A comparison of two trajectory strategies and best-of-N whose costs in best-of-N equivalents lie close
    together (4.3 and 4.4: labels that collided), with a reference pool of twice the largest budget."""
    from eacps.analysis.compare import run_compare
    from eacps.analysis.report import write_report

    tmp = runs["tmp"]
    run_compare(tmp / "tiny.toml", tmp / "trajectories", strategies="best-of-n,fk-steering,tree-search",
                budgets="4,8", repeats=1, pool=16)
    return write_report(tmp / "trajectories", title="eacps compare")


def test_compare_report_reads_in_chromium(trajectory_compare, tmp_path):
    """The comparison page as rendered: no two labels of a plot overlap (their boxes measured in the page), the
    CI and N* method is stated, a number carries one CI in every table, both cost models' multipliers, the pool
    drawn apart from the contestants, a tree per trajectory strategy and a table of contents."""
    r = browser_check(trajectory_compare, tmp_path)
    summary = json.loads((trajectory_compare.parent / "compare.json").read_text())
    assert r["overlaps"] == [], f"plot labels overlap: {r['overlaps']}"
    assert len(r["xticks"]["scaling"]) >= 2 and len(r["xticks"]["curves"]) == 2, r["xticks"]
    assert "percentile bootstrap over tasks (2000 replicates" in r["method"] and "N* is the best-of-N size" in \
        r["method"], r["method"]
    # one CI per number: each comparison row's mean best and CI are the summary row's of that strategy and budget
    summary_rows = {(row[0].split(" (n=")[0], row[1]): row[4:6] for row in r["rows"]["summary"]}
    for row in r["rows"]["compare"]:
        assert summary_rows[(row[0], row[1])] == row[2:4], (row, summary_rows)
    # both cost models: an equivalents and a multiplier column each, the multiplier cells as compare.json has them
    models = summary["cost_models"]
    assert len(models) == 2
    heads = r["headers"]["compare"]
    mult_cols = [i for i, h in enumerate(heads) if h.startswith("compute multiplier")]
    assert len(mult_cols) == 2 and "(measured)" in heads[mult_cols[0]] and "(judge k=1)" in heads[mult_cols[1]]
    assert "(a) measured: the run's cost model above; (b) judge k=1: one potential evaluation costs 1" in r["method"]
    from eacps.tables import multiplier_text

    for row, data in zip(r["rows"]["compare"], summary["table"], strict=True):
        assert [row[i] for i in mult_cols] == [multiplier_text(data["multipliers"][m], times="×", at_most="≤")
                                               for m in models]
    # the contestants span the best-so-far plot; the pool is a separate dashed line that does not stretch it
    assert r["reach"]["contestant"] > 0.6 and 0 < r["reach"]["reference"] <= r["reach"]["contestant"], r["reach"]
    assert {t.split("/")[1] for t in r["trees"]} == {"fk-steering", "tree-search"}, r["trees"]
    assert len(r["toc"]) >= 7 and all(ok for _, ok in r["toc"]), r["toc"]


def test_tick_labels_are_thinned_until_they_fit():
    from eacps.analysis.report import _text_width, fit_ticks

    ticks = [(100.0, "4.3"), (103.0, "4.4"), (140.0, "8.6"), (146.0, "8.8"), (400.0, "16")]
    kept = fit_ticks(ticks)
    assert kept[0] == (100.0, "4.3") and kept[-1] == (400.0, "16") and len(kept) == 3
    for (xa, ta), (xb, tb) in itertools.pairwise(kept):
        assert xb - _text_width(tb) / 2 >= xa + _text_width(ta) / 2 + 6
