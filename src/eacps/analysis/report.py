"""A self-contained static HTML report of a run store: one jinja2 template (``templates/report.html.j2``,
autoescaped), images embedded as data URLs, plots as inline SVG.

The page: a comparison (``compare.json``) or landscape (``landscape.json``) when the run directory has one,
then the per-strategy summary, best-so-far curves against charged cost, and per task the prior, each
strategy's best and the top candidates. Every table appears once, with one column per criterion; every
image links to its recipe and a snippet that regenerates it. Reading a store imports no torch.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from markupsafe import Markup

from eacps.allocation_log import allocation_context, stored_allocations
from eacps.analysis.stats import N_BOOT
from eacps.analysis.summary import SearchRecord, load_searches, summarize_store
from eacps.cost import figure
from eacps.store import POOL, SAMPLER_POOL, Candidate, image_file, missing_image, read_only
from eacps.tables import gap_text, multiplier_text
from eacps.types import Status

TOP_K = 5
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


# -- words ----------------------------------------------------------------------------------------------------
def _secs(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x >= 1:
        return f"{x:.2f} s"
    return f"{x * 1e3:.2f} ms" if x >= 1e-3 else f"{x * 1e6:.0f} µs"


def cost_words(units: Mapping[str, Any]) -> str:
    """The cost model in one sentence."""
    kind = {"measured": "measured in this run", "config": "set in the config's [cost] table",
            "mixed": "partly set in the config's [cost] table, partly measured in this run"}.get(
        str(units.get("kind")), str(units.get("kind")))
    step = units.get("seconds_per_step")
    if step is None:
        return "Cost model: nothing measured yet; costs are counted in denoising steps and scorer calls."
    calls = ", ".join(f"{k} {_secs(v)}" for k, v in (units.get("seconds_per_call") or {}).items()) or "none"
    return (f"Cost model ({kind}): {_secs(step)} per denoising step; per scorer call: {calls}. A search's cost is "
            "its denoising steps times the time per step plus, for each criterion, its scorer calls times the time "
            "per call, charged for every candidate it asked (candidates served from the store included).")


def _f(x: Any, spec: str = ".3f") -> str:
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return "-"
    return format(x, spec)


def _ci(ci: Sequence[Any] | None, spec: str = ".3f") -> str:
    return "-" if not ci or any(v is None for v in ci) else f"[{_f(ci[0], spec)}, {_f(ci[1], spec)}]"


def budget_of(search_id: str) -> int | None:
    """The budget in a search id (``cond/label/b20/s0`` from run and demo, ``cond/label/B20/r0`` from compare,
    ``cond/pool/N128`` for compare's best-of-N reference pool)."""
    m = re.search(r"/[bBN](\d+)(?:/|$)", search_id)
    return int(m.group(1)) if m else None


# -- SVG ------------------------------------------------------------------------------------------------------
def _svg(w: int, h: int, xlabel: str, ylo: float, yhi: float, id_: str, x_ticks: Sequence[tuple[float, str]]) -> list:
    parts = [Markup("<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' role='img' class='plot' "
                    "id='{id}'>").format(w=w, h=h, id=id_),
             Markup(f"<line x1='50' y1='{h - 40}' x2='{w - 20}' y2='{h - 40}' stroke='#000'/>"),
             Markup(f"<line x1='50' y1='20' x2='50' y2='{h - 40}' stroke='#000'/>"),
             Markup("<text x='{x}' y='{y}' text-anchor='middle' font-size='12'>{t}</text>").format(
                 x=w / 2, y=h - 8, t=xlabel),
             Markup(f"<text x='4' y='24' font-size='10'>{yhi:.2f}</text>"),
             Markup(f"<text x='4' y='{h - 40}' font-size='10'>{ylo:.2f}</text>")]
    parts += [Markup("<text class='xtick' x='{x:.1f}' y='{y}' font-size='10' text-anchor='middle'>{t}</text>").format(
        x=x, y=h - 26, t=t) for x, t in fit_ticks(x_ticks)]
    return parts


def _text_width(text: str, size: float = 10) -> float:
    """A generous estimate of a label's width in pixels (sans-serif digits are about 0.56 em wide)."""
    return 0.62 * size * len(text) + 2


def fit_ticks(ticks: Sequence[tuple[float, str]], gap: float = 6, size: float = 10) -> list[tuple[float, str]]:
    """The x-axis ticks whose centred labels do not touch: left to right, a tick is kept when its label starts
    ``gap`` pixels after the previous kept label ends (the first and the last tick are preferred)."""
    ticks = sorted(set(ticks))
    if len(ticks) <= 1:
        return list(ticks)
    half = lambda t: _text_width(t[1], size) / 2  # noqa: E731
    last = ticks[-1]
    kept: list[tuple[float, str]] = []
    for t in ticks[:-1]:
        clear_left = not kept or t[0] - half(t) >= kept[-1][0] + half(kept[-1]) + gap
        clear_last = t[0] + half(t) + gap <= last[0] - half(last)
        if clear_left and clear_last:
            kept.append(t)
    if not kept or last[0] - half(last) >= kept[-1][0] + half(kept[-1]) + gap:
        kept.append(last)
    return kept


def log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks from ``lo`` to ``hi`` (a log axis), with both ends."""
    out = {lo, hi}
    k = math.floor(math.log10(max(lo, 1e-9)))
    while 10 ** k <= hi:
        out |= {m * 10 ** k for m in (1, 2, 5) if lo <= m * 10 ** k <= hi}
        k += 1
    return sorted(out)


def _tick_text(x: float) -> str:
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def _band(color: str, pts: Sequence[tuple[float, float, float]]) -> Markup:
    """A shaded CI band through (x, lo, hi) points (pixel coordinates)."""
    poly = [f"{x:.1f},{lo:.1f}" for x, lo, _ in pts] + [f"{x:.1f},{hi:.1f}" for x, _, hi in reversed(pts)]
    return Markup(f"<polygon class='band' fill='{color}' fill-opacity='0.15' stroke='none' points='{' '.join(poly)}'/>")


def _line(color: str, pts: Sequence[tuple[float, float]], extra: str = "") -> Markup:
    return Markup(f"<polyline fill='none' stroke='{color}' stroke-width='2' {extra} points='"
                  + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + "'/>")


def _legend(x: float, y: float, color: str, text: str, size: int = 12) -> Markup:
    return Markup("<text x='{x}' y='{y}' font-size='{s}' fill='{c}'>{t}</text>").format(x=x, y=y, s=size, c=color,
                                                                                          t=text)


def _scale(lo: float, hi: float, a: float, b: float) -> Callable[[float], float]:
    hi = hi if hi > lo else lo + 1
    return lambda v: a + (b - a) * (v - lo) / (hi - lo)


def _charged(c: Candidate, steps: int, units: Mapping[str, Any]) -> float:
    """What one candidate costs its search (``steps``: its charged steps): seconds under the cost model, else
    denoising steps."""
    reached = c.image_path is not None and c.status is not Status.FILTERED
    calls = dict.fromkeys(c.scores, 1) if reached else {}
    fig = figure(steps, calls, units)
    return float(steps) if fig is None else fig


def cost_curves(recs: list[SearchRecord], units: Mapping[str, Any]) -> dict[str, list[tuple[float, float, float,
                                                                                           float]]]:
    """Per strategy: (charged cost, mean best-so-far, lower, upper 95% normal band) on the union of cost points."""
    by: dict[str, list[list[tuple[float, float | None]]]] = defaultdict(list)
    for r in recs:
        cost, pts = 0.0, []
        for c, steps, best in zip(r.candidates, r.charges, r.curve, strict=True):
            cost += _charged(c, steps, units)
            pts.append((cost, best))
        by[r.strategy].append(pts)
    out = {}
    for label, searches in by.items():
        grid = sorted({x for pts in searches for x, _ in pts})
        rows = []
        at = [0] * len(searches)  # per search: how many of its points lie at or before x (costs only grow)
        held: list[float | None] = [None] * len(searches)  # per search: its best so far at x
        for x in grid:
            for i, pts in enumerate(searches):
                while at[i] < len(pts) and pts[at[i]][0] <= x:
                    held[i] = pts[at[i]][1] if pts[at[i]][1] is not None else held[i]
                    at[i] += 1
            vals = [v for v in held if v is not None]
            if vals:
                m = sum(vals) / len(vals)
                se = (sum((v - m) ** 2 for v in vals) / (len(vals) - 1) / len(vals)) ** 0.5 if len(vals) > 1 else 0.0
                rows.append((x, m, m - 1.96 * se, m + 1.96 * se))
        out[label] = rows
    return out


#: eacps compare's reference pools (search ids ``task/best-of-n-pool/N128``, ``task/sampler-pool/.../N128``): drawn
#: apart from the contestants, never as one of them
POOL_SEARCH, SAMPLER_POOL_SEARCH = f"/{POOL}/", f"/{SAMPLER_POOL}/"


def _steps_of(curve: list[tuple[float, float, float, float]], px: Callable, py: Callable) -> list[tuple]:
    """A best-so-far curve as a step function in pixels: (x, lo, hi, mean); a value holds until the next lands."""
    steps = []
    for i, (x, m, lo, hi) in enumerate(curve):
        if i:
            steps.append((px(x), py(curve[i - 1][2]), py(curve[i - 1][3]), py(curve[i - 1][1])))
        steps.append((px(x), py(lo), py(hi), py(m)))
    return steps


def _clip(curve: list[tuple[float, float, float, float]], xmax: float) -> list[tuple[float, float, float, float]]:
    """The part of a curve at or before ``xmax``, held to ``xmax``."""
    kept = [p for p in curve if p[0] <= xmax]
    return [*kept, (xmax, *kept[-1][1:])] if kept and kept[-1][0] < xmax else kept


def curves_svg(recs: list[SearchRecord], units: Mapping[str, Any], w: int = 720, h: int = 300) -> Markup:
    """Mean best-so-far potential (95% band over searches) against charged cost, one line per strategy. A
    comparison's reference pool is drawn apart: a grey dashed line (best-of-N at equal cost), cut at the
    contestants' largest cost so it does not stretch the axis; its same-sampler pools are left out."""
    contest = [r for r in recs if not (POOL_SEARCH in r.search or SAMPLER_POOL_SEARCH in r.search)]
    curves = {k: v for k, v in cost_curves(contest, units).items() if v}
    if not curves:
        return Markup("<p>(no scored candidates)</p>")
    xmax = max(p[0] for v in curves.values() for p in v)
    refs = {k: _clip(v, xmax) for k, v in cost_curves([r for r in recs if POOL_SEARCH in r.search],
                                                      units).items()}
    refs = {k: v for k, v in refs.items() if v}
    seconds = units.get("seconds_per_step") is not None
    ys = [y for v in curves.values() for p in v for y in p[1:]] + [p[1] for v in refs.values() for p in v]
    px, py = _scale(0.0, xmax, 50, w - 230), _scale(min(ys), max(ys), h - 40, 20)
    label = "charged cost per search (seconds, cost model above)" if seconds else "charged denoising steps per search"
    parts = _svg(w, h, label, min(ys), max(ys), "curves", [(px(0), "0"), (px(xmax), _secs(xmax) if seconds
                                                                          else f"{xmax:.0f}")])
    for k, (name, pts) in enumerate(curves.items()):
        color = COLORS[k % len(COLORS)]
        steps = _steps_of(pts, px, py)
        parts.append(_band(color, [(x, lo, hi) for x, lo, hi, _ in steps]))
        parts.append(_line(color, [(x, m) for x, _, _, m in steps], "class='contestant'"))
        parts.append(_legend(w - 220, 30 + 14 * k, color, name))
    for j, (name, pts) in enumerate(refs.items()):
        steps = _steps_of(pts, px, py)
        parts.append(_line("#777", [(x, m) for x, _, _, m in steps], "class='reference' stroke-dasharray='5,3'"))
        parts.append(_legend(w - 220, 30 + 14 * (len(curves) + j), "#777", f"{name} (reference, cut)", 10))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _cost_x(row: Mapping[str, Any], summary: Mapping[str, Any]) -> float | None:
    m = row.get("multiplier")
    if m and m.get("equivalents"):
        return float(m["equivalents"])
    full = summary.get("full_steps")
    return row["steps"] / full if full else None


def scaling_svg(summary: Mapping[str, Any], w: int = 820, h: int = 340) -> Markup:
    """Mean best potential (95% CI band) against charged cost in best-of-N-candidate equivalents (log scale),
    beside the best-of-N curve of the reference pool and the write-up's approximation."""
    series: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
    for r in summary["table"]:
        x = _cost_x(r, summary)
        lo, hi = (r.get("ci95") or [None, None])[:2]
        if r.get("mean_best") is not None and x and lo is not None and hi is not None:
            series[r["strategy"]].append((x, r["mean_best"], lo, hi))
    curve = summary.get("best_of_n_curve") or {}
    preds = {k: list(zip(curve.get("n", []), curve[k], strict=False)) for k in ("empirical", "writeup_approx")
             if curve.get(k)}
    ys = [v for s in series.values() for p in s for v in p[1:]] + [v for p in preds.values() for _, v in p]
    xs = [p[0] for s in series.values() for p in s] + [n for p in preds.values() for n, _ in p]
    if not ys or not xs:
        return Markup("<p>(nothing to plot)</p>")
    lx = _scale(math.log2(max(min(xs), 1e-9)), math.log2(max(xs)), 50, w - 280)
    px, py = (lambda n: lx(math.log2(n))), _scale(min(ys), max(ys), h - 40, 20)
    parts = _svg(w, h, "charged cost (best-of-N candidate equivalents, log scale)", min(ys), max(ys), "scaling",
                 [(px(t), _tick_text(t)) for t in log_ticks(min(xs), max(xs))])
    styles = {"empirical": ("#555", "4,2", "best-of-N, reference pool"),
              "writeup_approx": ("#c90", "8,3", "write-up approx. μ+σ√(2 ln N)")}
    k = 0
    for key, pts in preds.items():
        color, dash, text = styles[key]
        parts.append(_line(color, [(px(n), py(v)) for n, v in pts], f"stroke-dasharray='{dash}'"))
        parts.append(_legend(w - 265, 30 + 14 * k, color, text, 10))
        k += 1
    for i, (label, pts) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        pts.sort()
        if len(pts) > 1:
            parts.append(_band(color, [(px(x), py(lo), py(hi)) for x, _, lo, hi in pts]))
        parts.append(_line(color, [(px(x), py(m)) for x, m, *_ in pts]))
        parts += [Markup(f"<line x1='{px(x):.1f}' x2='{px(x):.1f}' y1='{py(lo):.1f}' y2='{py(hi):.1f}' "
                         f"stroke='{color}'/>") for x, _, lo, hi in pts]
        parts.append(_legend(w - 265, 30 + 14 * k, color, label))
        k += 1
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def landscape_svg(summary: Mapping[str, Any], w: int = 520, h: int = 260) -> Markup:
    """Parent-child correlation of potentials (bars with CIs) and of noises (dots) per neighbourhood."""
    rows = summary["neighborhoods"]
    if not rows:
        return Markup("<p>(no neighbourhoods)</p>")
    py = _scale(-1.0, 1.0, h - 40, 20)
    bw = (w - 80) / len(rows)
    parts = _svg(w, h, "neighbourhood (bars: potential r; dots: noise r)", -1, 1, "landscape",
                 [(60 + i * bw + bw * 0.3, r["neighborhood"]) for i, r in enumerate(rows)])  # names that fit
    parts.append(Markup(f"<line x1='50' x2='{w - 20}' y1='{py(0)}' y2='{py(0)}' stroke='#aaa'/>"))
    for i, r in enumerate(rows):
        x = 60 + i * bw
        v = r["potential_r"] if r["potential_r"] == r["potential_r"] else 0.0
        parts.append(Markup(f"<rect x='{x:.1f}' y='{min(py(v), py(0)):.1f}' width='{bw * 0.6:.1f}' "
                            f"height='{abs(py(v) - py(0)):.1f}' fill='{COLORS[0]}'/>"))
        lo, hi = r["potential_r_ci95"]
        if lo == lo and hi == hi:
            parts.append(Markup(f"<line x1='{x + bw * 0.3:.1f}' x2='{x + bw * 0.3:.1f}' y1='{py(lo):.1f}' "
                                f"y2='{py(hi):.1f}' stroke='#000'/>"))
        if r["noise_r"] == r["noise_r"]:
            parts.append(Markup(f"<circle cx='{x + bw * 0.3:.1f}' cy='{py(r['noise_r']):.1f}' r='4' "
                                f"fill='{COLORS[1]}'/>"))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def trees(searches: Mapping[str, list[Candidate]], limit: int = 2) -> dict[str, list[dict[str, Any]]] | None:
    """Trajectory trees of the searches that asked path recipes (the newest ``limit`` of every strategy label, so
    each trajectory strategy of a comparison shows), None when there are none.

    Parent links are the stored ones (``Candidate.parent``, the seq its strategy's ledger gave when it asked): a
    node per candidate, in ask order, with its parent's store id, its potential and where its path stops (``until``;
    None: the end).
    ``searches``: every search's candidates (role ``search``) in ask order (``seq``)."""
    paths = {sid: cs for sid, cs in searches.items()  # a same-sampler pool is no strategy's tree
             if SAMPLER_POOL_SEARCH not in sid and any(c.recipe.is_path for c in cs)}
    if not paths:
        return None
    by_label: dict[str, list[str]] = defaultdict(list)
    for sid in sorted(paths, key=lambda sid: max(c.id or 0 for c in paths[sid])):
        by_label[paths[sid][0].strategy or "?"].append(sid)
    newest = [sid for sids in by_label.values() for sid in sids[-limit:]]
    out = {}
    for sid in newest:
        cs = paths[sid]
        ids = {c.seq: c.id for c in cs}
        out[sid] = [{"id": c.id, "parent": ids.get(c.parent), "potential": c.potential,
                     "until": c.recipe.until, "best": c.result.eligible} for c in cs]
    return out


def tree_svg(nodes: list[dict[str, Any]], color: str, max_nodes: int = 120) -> Markup:
    """One search's tree: x = depth, y = order asked; coloured dots are full trajectories, grey ones previews."""
    shown, at, depth = nodes[:max_nodes], {}, {}
    for i, n in enumerate(shown):
        depth[n["id"]] = depth[n["parent"]] + 1 if n["parent"] in depth else 0
        at[n["id"]] = (20 + 40 * depth[n["id"]], 10 + 6 * i)
    w, h = 40 + 40 * max(depth.values(), default=0), 20 + 6 * len(shown)
    parts = [Markup(f"<svg xmlns='http://www.w3.org/2000/svg' width='{max(w, 200)}' height='{h}' class='tree'>")]
    for n in shown:
        if n["parent"] in at:
            (px, py), (x, y) = at[n["parent"]], at[n["id"]]
            parts.append(Markup(f"<line x1='{px}' y1='{py}' x2='{x}' y2='{y}' stroke='#bbb'/>"))
    for n in shown:
        x, y = at[n["id"]]
        title = f"#{n['id']} U={_f(n['potential'])} until={'end' if n['until'] is None else n['until']}"
        parts.append(Markup("<circle class='node' cx='{x}' cy='{y}' r='2.5' fill='{c}'><title>{t}</title></circle>")
                     .format(x=x, y=y, c=color if n["best"] else "#999", t=title))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


# -- reproduction ---------------------------------------------------------------------------------------------
def reproduction(generator: Mapping[str, Any] | None, prompt: str | None, recipe: Any) -> list[str]:
    """The two lines that reproduce a seed-only diffusers candidate in plain diffusers ([] otherwise)."""
    if not generator or generator.get("name") != "diffusers" or not prompt or not recipe.is_seed_only:
        return []
    gp = generator.get("params") or {}
    steps = f", num_inference_steps={gp['steps']}" if gp.get("steps") else ""
    return [f"pipe = DiffusionPipeline.from_pretrained({gp.get('model')!r}).to(device)",
            f"image = pipe({prompt!r}, generator=torch.Generator(\"cpu\").manual_seed({recipe.seed}){steps}).images[0]"]


def snippet(generator: Mapping[str, Any] | None, condition: Mapping[str, Any], c: Candidate) -> str:
    """Code that regenerates candidate ``c``: plain diffusers for a seed-only diffusers recipe, else eacps."""
    lines = reproduction(generator, condition.get("prompt"), c.recipe)
    if lines:
        return "\n".join(["# plain diffusers (the winner's seed; same settings as the run)", *lines])
    if not generator:
        return f"# this run's config does not name its generator; the recipe is\nRecipe.from_json({c.recipe.key!r})"
    name = generator.get("name")
    params = dict(generator.get("params") or {})
    cond = {k: condition[k] for k in ("id", "prompt", "negative_prompt", "class_label", "extra") if k in condition}
    return "\n".join([
        "from eacps import Condition, Recipe",
        "from eacps.config import create",
        f"gen = create('generator', {name!r}, {params!r})",
        "gen.load()",
        f"condition = Condition(**{cond!r})" + ("  # and the reference image" if "reference_path" in condition else ""),
        f"image = gen.generate([Recipe.from_json({c.recipe.key!r})], condition"
        + (f", steps={c.steps})[0].image" if c.recipe.steps is not None else ")[0].image")])


# -- context --------------------------------------------------------------------------------------------------
class Images:
    """Figures (data-URL images linked to their recipe) and the recipe entries they link to."""

    def __init__(self, root: Path, generator: Mapping[str, Any] | None, conditions: Mapping[str, dict]) -> None:
        self.root, self.generator, self.conditions = root, generator, conditions
        self.recipes: dict[str, dict[str, Any]] = {}

    def png(self, name: str) -> str:
        """The store image ``name`` (``images/<hex>.png``, validated when read) as a data URL; a file that resolves
        outside the run's images/ folder (a symlink) is refused: a report embeds nothing else."""
        path = image_file(self.root, name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise missing_image(self.root / name) from None
        return "data:image/png;base64," + base64.b64encode(data).decode()

    def figure(self, c: Candidate | None, caption: str) -> dict[str, Any]:
        if c is None or c.image_path is None:
            return {"caption": caption, "src": None}
        anchor = f"c{c.id}"
        if anchor not in self.recipes:
            self.recipes[anchor] = {
                "anchor": anchor, "condition": c.condition, "strategy": c.strategy or "-", "status": str(c.status),
                "potential": _f(c.potential), "scores": [(k, _f(v, ".2f")) for k, v in c.scores.items()],
                "recipe": c.recipe.key, "steps": c.steps, "reason": c.reason,
                "snippet": snippet(self.generator, self.conditions.get(c.condition, {"id": c.condition}), c)}
        return {"caption": caption, "src": self.png(c.image_path), "anchor": anchor,
                "alt": f"{c.condition} {c.recipe.key}", "potential": _f(c.potential, ".2f"),
                "scores": " ".join(f"{k[:4]}={v:.1f}" for k, v in c.scores.items())}


def model_words(name: str, short: bool = False) -> str:
    """A compare cost model's name in words (``measured``, ``scorer_cost=4``); ``short``: for a column head."""
    if name == "measured":
        return "measured" if short else "measured: the run's cost model above"
    if name.startswith("scorer_cost="):
        k = name.split("=", 1)[1]
        return f"judge k={k}" if short else f"judge k={k}: one potential evaluation costs {k} generation(s)"
    return name


def method_words(summary: Mapping[str, Any]) -> str:
    """How the comparison's CIs and N* are computed, in one paragraph."""
    boot = summary.get("bootstrap") or {}
    models = "; ".join(f"({chr(97 + i)}) {model_words(n)}" for i, n in enumerate(summary.get("cost_models") or []))
    return (f"How these numbers are computed: every 95% CI on this page is a percentile bootstrap over tasks "
            f"({boot.get('replicates', '-')} replicates, seed {boot.get('seed', '-')}): the tasks are resampled with "
            "replacement, jointly for every strategy (so differences are paired), a task's value being the mean over "
            "its strategy seeds (the sampler effect's also resamples pool positions); the summary table below uses "
            "the same replicates, so a number has one CI. N* is the "
            "best-of-N size whose expected best (the unbiased expected maximum of N draws from each task's reference "
            "pool, averaged over tasks) equals the strategy's mean best; the compute multiplier is N* divided by the "
            "strategy's charged cost in best-of-N candidate equivalents (one = T denoising steps + one potential "
            f"evaluation), once per cost model: {models}. Its CI recomputes N* and the cost in every replicate.")


def compare_context(summary: Mapping[str, Any]) -> dict[str, Any]:
    criteria = sorted({k for r in summary["table"] for k in r.get("scorer_calls", {})})
    models = list(summary.get("cost_models") or ["measured"])
    rows = []
    for r in summary["table"]:
        diff = "-" if "diff_vs_best_of_n" not in r else f"{r['diff_vs_best_of_n']:+.3f} {_ci(r['diff_ci95'], '+.3f')}"
        ms = r.get("multipliers") or {}
        rows.append({"strategy": r["strategy"], "budget": r["budget"], "mean_best": _f(r.get("mean_best")),
                     "ci": _ci(r.get("ci95")), "diff": diff,
                     "multipliers": [(_f((ms.get(n) or {}).get("equivalents"), ".1f"),
                                      multiplier_text(ms.get(n), times="×", at_most="≤")) for n in models],
                     "steps": _f(r.get("steps"), ".0f"), "gap": gap_text(r.get("optimum_gap")),
                     "calls": [_f(r["scorer_calls"].get(k), ".1f") for k in criteria],
                     "seconds": _secs(r.get("cost_seconds"))})
    p = summary.get("protocol") or {}
    notes = []
    if p:
        notes.append(f"{p.get('reported', 'evaluation')} split: {summary['tasks']} tasks; "
                     f"{summary.get('repeats', 1)} strategy seed(s) per task.")
    pool = summary.get("pool")
    if isinstance(pool, dict):
        notes.append(f"Reference pool: {pool.get('size', 0)} best-of-N samples per task on a seed stream no contestant "
                     "uses; a multiplier beyond what the pool resolves reads '>pool'.")
    opt = summary.get("optimum")
    if opt:
        notes.append(f"Known optimum per task (the generator's; mean {opt['mean']:.3f}, best-of-1 "
                     f"{opt['best_of_1']:.3f}): 'optimum gap closed' is (mean best − best-of-1) / (optimum − "
                     "best-of-1), with a paired bootstrap 95% CI over tasks.")
    return {"criteria": criteria, "rows": rows, "cost": cost_words(summary["cost_model"]), "notes": notes,
            "models": [model_words(n, short=True) for n in models], "method": method_words(summary),
            "optimum": bool(opt), "warnings": summary.get("warnings", []), "scaling": scaling_svg(summary),
            "sampler": sampler_rows(summary)}


def sampler_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """compare's search-or-sampler rows: each branching strategy against vanilla and same-sampler best-of-N."""
    out = []
    for r in summary["table"]:
        ss = r.get("same_sampler")
        if ss is None:
            continue
        effect = "-" if "effect" not in ss else f"{ss['effect']:+.3f} {_ci(ss['effect_ci95'], '+.3f')}"
        out.append({"strategy": r["strategy"], "budget": r["budget"], "schedule": ss["schedule"]["label"],
                    "vanilla": multiplier_text(r.get("multiplier"), times="×", at_most="≤"),
                    "same": multiplier_text(ss.get("multiplier"), times="×", at_most="≤"), "effect": effect})
    return out


def landscape_context(summary: Mapping[str, Any]) -> dict[str, Any]:
    rows = [{"neighborhood": r["neighborhood"], "noise_r": _f(r["noise_r"]), "potential_r": _f(r["potential_r"]),
             "ci": _ci(r["potential_r_ci95"]), "pairs": r["pairs"]} for r in summary["neighborhoods"]]
    return {"rows": rows, "svg": landscape_svg(summary)}


def summary_context(summary: Mapping[str, Any], recs: list[SearchRecord]) -> dict[str, Any]:
    criteria = sorted({k for s in summary["strategies"].values() for k in s["cost_per_search"]["scorer_calls"]})
    budgets: dict[str, set[int]] = defaultdict(set)
    for r in recs:
        b = budget_of(r.search)
        if b is not None:
            budgets[r.strategy].add(b)
    rows = []
    for label, s in summary["strategies"].items():
        c = s["cost_per_search"]
        rows.append({"label": label, "budget": ", ".join(map(str, sorted(budgets[label]))) or "-",
                     "candidates": _f(s["candidates"] / max(1, s["n_searches"]), ".0f"), "searches": s["n_searches"],
                     "mean_best": _f(s["mean_best"]), "ci": _ci(s["ci95"]),
                     "improvement": _f(s["improvement_over_prior"], "+.3f"),
                     "failure": f"{100 * s['failure_rate']:.1f}%", "steps": _f(c["steps"], ".0f"),
                     "calls": [_f(c["scorer_calls"].get(k), ".1f") for k in criteria], "seconds": _secs(c["seconds"])})
    return {"criteria": criteria, "rows": rows, "cost": cost_words(summary["cost_model"]),
            "n_tasks": summary["n_tasks"], "prior_mean": _f(summary.get("prior_mean")), "n_boot": N_BOOT}


def tasks_context(recs: list[SearchRecord], images: Images) -> list[dict[str, Any]]:
    by_cond: dict[str, list[SearchRecord]] = defaultdict(list)
    for r in recs:
        by_cond[r.condition].append(r)
    out = []
    for cond, rs in by_cond.items():
        ref = images.conditions.get(cond, {}).get("reference_image")  # validated by Store.condition_json
        seen, top = set(), []
        for c in sorted((c for r in rs for c in r.candidates if c.result.eligible), key=lambda c: -c.potential):
            if c.cache_key not in seen:
                seen.add(c.cache_key)
                top.append(c)
        out.append({
            "condition": cond,
            "reference": images.png(ref) if ref and (images.root / ref).exists() else None,
            "figures": [images.figure(rs[0].prior, "prior")] + [images.figure(r.best, f"best: {r.strategy}")
                                                               for r in rs],
            "top": [images.figure(c, f"#{i + 1} {c.strategy}") for i, c in enumerate(top[:TOP_K])],
            "n_distinct": len(seen)})
    return out


def context(run_dir: str | Path, title: str) -> dict[str, Any]:
    """Everything the template shows (plain values and pre-built SVG)."""
    root = Path(run_dir)
    store = read_only(root)
    try:
        logs = stored_allocations(store)
        recs = load_searches(store, logs)
        summary = summarize_store(store, recs)
        tree_data = trees({r.search: r.candidates for r in recs})
        config = store.get_meta("config", expect=dict)
        for key in ("compare", "landscape"):  # their configs live in their own meta entries
            config = config or (store.get_meta(key, expect=dict) or {}).get("config")
        conditions = {r.condition: store.condition_json(r.condition) for r in recs}
        allocations = [allocation_context(log) for log in logs.values()]
    finally:
        store.close()
    generator = config.get("generator") if isinstance(config, dict) else None
    images = Images(root, generator, conditions)
    ctx: dict[str, Any] = {"title": title, "compare": None, "landscape": None}
    if (root / "compare.json").exists():  # a comparison or landscape leads; the per-search summary follows
        ctx["compare"] = compare_context(json.loads((root / "compare.json").read_text()))
    if (root / "landscape.json").exists():
        ctx["landscape"] = landscape_context(json.loads((root / "landscape.json").read_text()))
    ctx["summary"] = summary_context(summary, recs)
    ctx["allocations"] = allocations  # where a cross-condition budget went and why (eacps.allocate)
    ctx["curves"] = curves_svg(recs, summary["cost_model"])
    ctx["tasks"] = tasks_context(recs, images)
    ctx["recipes"] = list(images.recipes.values())
    ctx["trees"] = [(sid, len(nodes), tree_svg(nodes, COLORS[i % len(COLORS)]))
                    for i, (sid, nodes) in enumerate((tree_data or {}).items())]
    ctx["config"] = None if config is None else json.dumps(config, indent=2)
    return ctx


def render(run_dir: str | Path, title: str = "eacps report") -> str:
    from jinja2 import Environment, PackageLoader

    env = Environment(loader=PackageLoader("eacps", "templates"), autoescape=True, trim_blocks=True,
                      lstrip_blocks=True)
    return env.get_template("report.html.j2").render(**context(run_dir, title))


def write_report(run_dir: str | Path, out: str | Path | None = None, title: str = "eacps report") -> Path:
    path = Path(out) if out is not None else Path(run_dir) / "report.html"
    path.write_text(render(run_dir, title))
    return path
