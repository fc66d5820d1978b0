"""A self-contained static HTML report of a run store (images embedded, plots as inline SVG)."""

from __future__ import annotations

import base64
import html
import json
from collections import defaultdict
from pathlib import Path

from eacps.store import Candidate, read_only
from eacps.summary import SearchRecord, format_table, load_searches, summarize_store

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
img.cand{width:72px;height:72px;image-rendering:pixelated;border:1px solid #999;display:block}
figure{display:inline-block;margin:4px;text-align:center;font-size:11px}
.task{margin:1em 0;padding:.5em;border-top:1px solid #ddd}
"""


def _img(c: Candidate | None, root: Path) -> str:
    if c is None or c.image_path is None:
        return "<div class='noimg'>(no image)</div>"
    data = base64.b64encode((root / c.image_path).read_bytes()).decode()
    alt = html.escape(f"{c.condition} {c.recipe.key}")
    return f"<img class='cand' alt='{alt}' src='data:image/png;base64,{data}'>"


def _fig(c: Candidate | None, root: Path, caption: str) -> str:
    pot = "" if c is None or c.potential is None else f"U={c.potential:.2f}"
    scores = "" if c is None else " ".join(f"{k[:4]}={v:.1f}" for k, v in c.scores.items())
    return (f"<figure>{_img(c, root)}<figcaption>{html.escape(caption)}<br>{pot}<br>"
            f"{html.escape(scores)}</figcaption></figure>")


def curves_svg(recs: list[SearchRecord], w: int = 520, h: int = 300) -> str:
    """Mean best-so-far potential vs number of candidates, one line per strategy."""
    by: dict[str, list[list[float | None]]] = defaultdict(list)
    for r in recs:
        by[r.strategy].append(r.curve)
    lines = {}
    for label, curves in by.items():
        n = max(len(c) for c in curves)
        means = []
        for i in range(n):
            vals = [c[min(i, len(c) - 1)] for c in curves if c and c[min(i, len(c) - 1)] is not None]
            means.append(sum(vals) / len(vals) if vals else None)
        lines[label] = means
    vals = [v for m in lines.values() for v in m if v is not None]
    if not vals:
        return "<p>(no scored candidates)</p>"
    lo, hi = min(vals), max(vals)
    hi = hi if hi > lo else lo + 1
    n = max(len(m) for m in lines.values())
    px = lambda i: 50 + (w - 70) * (i / max(1, n - 1))  # noqa: E731
    py = lambda v: h - 40 - (h - 60) * (v - lo) / (hi - lo)  # noqa: E731
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' role='img' class='plot'>",
             f"<line x1='50' y1='{h - 40}' x2='{w - 20}' y2='{h - 40}' stroke='#000'/>",
             f"<line x1='50' y1='20' x2='50' y2='{h - 40}' stroke='#000'/>",
             f"<text x='{w / 2}' y='{h - 8}' text-anchor='middle' font-size='12'>candidates</text>",
             f"<text x='50' y='{h - 26}' font-size='10'>1</text>",
             f"<text x='{w - 30}' y='{h - 26}' font-size='10'>{n}</text>",
             f"<text x='4' y='{py(hi) + 4}' font-size='10'>{hi:.1f}</text>",
             f"<text x='4' y='{py(lo) + 4}' font-size='10'>{lo:.1f}</text>"]
    for k, (label, means) in enumerate(lines.items()):
        pts = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in enumerate(means) if v is not None)
        color = COLORS[k % len(COLORS)]
        parts.append(f"<polyline fill='none' stroke='{color}' stroke-width='2' points='{pts}'/>")
        parts.append(f"<text x='{w - 160}' y='{30 + 14 * k}' font-size='12' fill='{color}'>{html.escape(label)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def render(run_dir: str | Path, title: str = "eacps report") -> str:
    root = Path(run_dir)
    store = read_only(root)
    try:
        recs = load_searches(store)
        summary = summarize_store(store)
        config = store.get_meta("config")
    finally:
        store.close()
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
           f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    out.append("<h2>Summary</h2><table id='summary'><tr><th>strategy</th><th>searches</th><th>mean best</th>"
               "<th>95% CI</th><th>improvement over prior</th><th>failure rate</th></tr>")
    for label, s in summary["strategies"].items():
        mb = "-" if s["mean_best"] is None else f"{s['mean_best']:.3f}"
        imp = "-" if s["improvement_over_prior"] is None else f"{s['improvement_over_prior']:+.3f}"
        out.append(f"<tr><td>{html.escape(label)}</td><td>{s['n_searches']}</td><td>{mb}</td>"
                   f"<td>[{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]</td><td>{imp}</td>"
                   f"<td>{100 * s['failure_rate']:.1f}%</td></tr>")
    out.append("</table>")
    out.append(f"<pre>{html.escape(format_table(summary))}</pre>")
    out.append("<h2>Best-so-far (mean over tasks)</h2>" + curves_svg(recs))
    out.append("<h2>Tasks: prior vs best</h2>")
    by_cond: dict[str, list[SearchRecord]] = defaultdict(list)
    for r in recs:
        by_cond[r.condition].append(r)
    for cond, rs in by_cond.items():
        out.append(f"<div class='task'><h3>{html.escape(cond)}</h3>")
        out.append(_fig(rs[0].prior, root, "prior"))
        for r in rs:
            out.append(_fig(r.best, root, f"best: {r.strategy}"))
        out.append("</div>")
    if config is not None:
        out.append(f"<h2>Config</h2><pre>{html.escape(json.dumps(config, indent=2))}</pre>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(run_dir: str | Path, out: str | Path | None = None, title: str = "eacps report") -> Path:
    path = Path(out) if out is not None else Path(run_dir) / "report.html"
    path.write_text(render(run_dir, title))
    return path
