"""A self-contained static HTML report of a run store (images embedded, plots as inline SVG)."""

from __future__ import annotations

import base64
import html
import json
from collections import defaultdict
from pathlib import Path

from eacps.store import Candidate, read_only
from eacps.summary import SearchRecord, format_table, load_searches, summarize_store

TOP_K = 5
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
    return _png(root / c.image_path, f"{c.condition} {c.recipe.key}")


def _png(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<img class='cand' alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"


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


def _axes(w: int, h: int, xlabel: str, ylo: float, yhi: float) -> list[str]:
    return [f"<line x1='50' y1='{h - 40}' x2='{w - 20}' y2='{h - 40}' stroke='#000'/>",
            f"<line x1='50' y1='20' x2='50' y2='{h - 40}' stroke='#000'/>",
            f"<text x='{w / 2}' y='{h - 8}' text-anchor='middle' font-size='12'>{html.escape(xlabel)}</text>",
            f"<text x='4' y='24' font-size='10'>{yhi:.2f}</text>",
            f"<text x='4' y='{h - 40}' font-size='10'>{ylo:.2f}</text>"]


def scaling_svg(summary: dict, w: int = 820, h: int = 340) -> str:
    """Mean best potential vs log budget per strategy (with CIs), beside the best-of-N predictions."""
    import math

    rows = summary["table"]
    curve = summary.get("best_of_n_curve", {})
    series: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
    for r in rows:
        if r["mean_best"] is not None:
            series[r["strategy"]].append((r["budget"], r["mean_best"], r["ci95"][0], r["ci95"][1]))
    preds = {k: list(zip(curve.get("n", []), curve.get(k, []), strict=False))
             for k in ("normal_exact", "empirical", "writeup_approx") if curve.get(k)}
    ys = [v for s in series.values() for _, m, lo, hi in s for v in (m, lo, hi) if not math.isnan(v)]
    ys += [v for p in preds.values() for _, v in p]
    xs = [b for s in series.values() for b, *_ in s] + [n for p in preds.values() for n, _ in p]
    if not ys or not xs:
        return "<p>(nothing to plot)</p>"
    ylo, yhi = min(ys), max(ys)
    yhi = yhi if yhi > ylo else ylo + 1
    xlo, xhi = math.log2(max(1, min(xs))), math.log2(max(xs))
    xhi = xhi if xhi > xlo else xlo + 1
    px = lambda n: 50 + (w - 330) * (math.log2(n) - xlo) / (xhi - xlo)  # noqa: E731
    py = lambda v: h - 40 - (h - 60) * (v - ylo) / (yhi - ylo)  # noqa: E731
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' role='img' class='plot' "
             "id='scaling'>", *_axes(w, h, "budget (log scale)", ylo, yhi)]
    for n in sorted(set(summary["budgets"])):
        parts.append(f"<text x='{px(n):.1f}' y='{h - 26}' font-size='10' text-anchor='middle'>{n}</text>")
    styles = {"normal_exact": ("#555", "4,2", "best-of-N exact E[max] (normal fit)"),
              "empirical": ("#999", "1,2", "best-of-N exact E[max] (empirical)"),
              "writeup_approx": ("#c90", "8,3", "write-up approx. mu+sigma*sqrt(2 ln N)")}
    k = 0
    for key, pts in preds.items():
        color, dash, text = styles[key]
        poly = " ".join(f"{px(n):.1f},{py(v):.1f}" for n, v in pts)
        parts.append(f"<polyline fill='none' stroke='{color}' stroke-dasharray='{dash}' points='{poly}'/>")
        parts.append(f"<text x='{w - 265}' y='{30 + 14 * k}' font-size='10' fill='{color}'>{html.escape(text)}</text>")
        k += 1
    for i, (label, pts) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        pts.sort()
        parts.append(f"<polyline fill='none' stroke='{color}' stroke-width='2' points='"
                     + " ".join(f"{px(b):.1f},{py(m):.1f}" for b, m, *_ in pts) + "'/>")
        for b, _m, lo, hi in pts:
            if not (math.isnan(lo) or math.isnan(hi)):
                parts.append(f"<line x1='{px(b):.1f}' x2='{px(b):.1f}' y1='{py(lo):.1f}' y2='{py(hi):.1f}' "
                             f"stroke='{color}'/>")
        parts.append(f"<text x='{w - 265}' y='{30 + 14 * k}' font-size='12' fill='{color}'>{html.escape(label)}</text>")
        k += 1
    parts.append("</svg>")
    return "".join(parts)


def landscape_svg(summary: dict, w: int = 520, h: int = 260) -> str:
    """Parent-child correlation of potentials (bars with CIs) and of noises (dots) per neighbourhood."""
    rows = summary["neighborhoods"]
    if not rows:
        return "<p>(no neighbourhoods)</p>"
    py = lambda v: 20 + (h - 60) * (1 - v) / 2  # noqa: E731  (r from -1 to 1)
    bw = (w - 80) / len(rows)
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' role='img' class='plot' "
             f"id='landscape'>", *_axes(w, h, "neighbourhood (bars: potential r; dots: noise r)", -1, 1),
             f"<line x1='50' x2='{w - 20}' y1='{py(0)}' y2='{py(0)}' stroke='#aaa'/>"]
    for i, r in enumerate(rows):
        x = 60 + i * bw
        v = r["potential_r"] if r["potential_r"] == r["potential_r"] else 0.0
        parts.append(f"<rect x='{x:.1f}' y='{min(py(v), py(0)):.1f}' width='{bw * 0.6:.1f}' "
                     f"height='{abs(py(v) - py(0)):.1f}' fill='{COLORS[0]}'/>")
        lo, hi = r["potential_r_ci95"]
        if lo == lo and hi == hi:
            cx = x + bw * 0.3
            parts.append(f"<line x1='{cx:.1f}' x2='{cx:.1f}' y1='{py(lo):.1f}' y2='{py(hi):.1f}' stroke='#000'/>")
        parts.append(f"<circle cx='{x + bw * 0.3:.1f}' cy='{py(r['noise_r']):.1f}' r='4' fill='{COLORS[1]}'/>")
        parts.append(f"<text x='{x:.1f}' y='{h - 26}' font-size='10'>{html.escape(r['neighborhood'])}</text>")
    parts.append("</svg>")
    return "".join(parts)


def compare_section(summary: dict) -> str:
    from eacps.compare import format_compare

    out = ["<h2>Comparison at equal cost</h2><table id='compare'><tr><th>strategy</th><th>budget</th>"
           "<th>mean best</th><th>95% CI</th><th>vs best-of-N</th><th>multiplier</th><th>steps</th>"
           "<th>scorer calls</th></tr>"]
    for r in summary["table"]:
        m = r.get("multiplier")
        mult = "-" if m is None else f"{'>' if m['bound'] == '>' else ''}{m['multiplier']:.2f}x"
        diff = "-" if "diff_vs_best_of_n" not in r else (
            f"{r['diff_vs_best_of_n']:+.3f} [{r['diff_ci95'][0]:+.3f}, {r['diff_ci95'][1]:+.3f}]")
        mb = "-" if r["mean_best"] is None else f"{r['mean_best']:.3f}"
        out.append(f"<tr><td>{html.escape(r['strategy'])}</td><td>{r['budget']}</td><td>{mb}</td>"
                   f"<td>[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]</td><td>{diff}</td><td>{mult}</td>"
                   f"<td>{r['steps']:.0f}</td><td>{html.escape(json.dumps(r['scorer_calls']))}</td></tr>")
    out.append("</table>")
    out.append(f"<p>Cost model: {html.escape(json.dumps(summary['cost_model']))}</p>")
    out.append("<h3>Scaling</h3>" + scaling_svg(summary))
    out.append(f"<pre>{html.escape(format_compare(summary))}</pre>")
    return "\n".join(out)


def landscape_section(summary: dict) -> str:
    from eacps.landscape import format_landscape

    out = ["<h2>Landscape: is the seed space structured?</h2><table id='landscape-table'><tr>"
           "<th>neighbourhood</th><th>noise r</th><th>potential r (within task)</th><th>95% CI</th>"
           "<th>pairs</th></tr>"]
    for r in summary["neighborhoods"]:
        lo, hi = r["potential_r_ci95"]
        out.append(f"<tr><td>{html.escape(r['neighborhood'])}</td><td>{r['noise_r']:.3f}</td>"
                   f"<td>{r['potential_r']:.3f}</td><td>[{lo:.3f}, {hi:.3f}]</td><td>{r['pairs']}</td></tr>")
    out.append("</table>" + landscape_svg(summary) + f"<pre>{html.escape(format_landscape(summary))}</pre>")
    return "\n".join(out)


def render(run_dir: str | Path, title: str = "eacps report") -> str:
    root = Path(run_dir)
    store = read_only(root)
    try:
        recs = load_searches(store)
        summary = summarize_store(store)
        config = store.get_meta("config")
        conditions = {r.condition: store.condition_json(r.condition) for r in recs}
    finally:
        store.close()
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
           f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for name, section in (("compare.json", compare_section), ("landscape.json", landscape_section)):
        if (root / name).exists():  # a comparison or landscape leads; the per-search summary follows
            out.append(section(json.loads((root / name).read_text())))
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
        ref = conditions.get(cond, {}).get("reference_image")
        if ref and (root / ref).exists():
            out.append(f"<figure>{_png(root / ref, f'{cond} reference')}<figcaption>reference</figcaption></figure>")
        out.append(_fig(rs[0].prior, root, "prior"))
        for r in rs:
            out.append(_fig(r.best, root, f"best: {r.strategy}"))
        seen, top = set(), []
        for c in sorted((c for r in rs for c in r.candidates if c.result.eligible), key=lambda c: -c.potential):
            if c.cache_key not in seen:
                seen.add(c.cache_key)
                top.append(c)
        out.append(f"<div class='topk'><b>top {min(TOP_K, len(top))} of {len(seen)} distinct candidates</b><br>")
        out += [_fig(c, root, f"#{i + 1} {c.strategy}") for i, c in enumerate(top[:TOP_K])]
        out.append("</div></div>")
    if config is not None:
        out.append(f"<h2>Config</h2><pre>{html.escape(json.dumps(config, indent=2))}</pre>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(run_dir: str | Path, out: str | Path | None = None, title: str = "eacps report") -> Path:
    path = Path(out) if out is not None else Path(run_dir) / "report.html"
    path.write_text(render(run_dir, title))
    return path
