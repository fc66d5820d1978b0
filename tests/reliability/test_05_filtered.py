"""Promise 5: black, NaN and safety-filtered images are FILTERED with their reason and never reach a scorer."""

from __future__ import annotations

import sys
import types

import numpy as np
from runs import rows, toy_config
from toy import ToyGenerator, ToyMeanScorer

from eacps import Generated, hookimpl, plugins
from eacps.cli import main

SEEN: list[np.ndarray] = []


class FaultyGenerator(ToyGenerator):
    """Every fourth image (by noise) is black, NaN, or flagged by a safety checker."""

    name = "toy-faulty"

    def generate(self, recipes, condition, *, steps=None):
        out = super().generate(recipes, condition, steps=steps)
        z = self.noises(recipes, condition)
        for i, g in enumerate(out):
            kind = int(abs(float(z[i].mean())) * 1000) % 4
            if kind == 1:
                g.image = np.zeros_like(g.image)
            elif kind == 2:
                g.image = np.full_like(g.image, np.nan)
            elif kind == 3:
                out[i] = Generated.filtered("safety checker flagged the image", g.image)
        return out


class WatchScorer(ToyMeanScorer):
    """Records every image it is asked to score."""

    name = "toy-watch"

    def score(self, images, condition):
        SEEN.extend(images)
        return super().score(images, condition)


def test_black_nan_and_safety_images_are_filtered_not_scored(tmp_path, toy_plugin, capsys, figures):
    mod = types.ModuleType("rel_faulty")
    mod.register_generators = hookimpl(lambda register: register(FaultyGenerator))
    mod.register_scorers = hookimpl(lambda register: register(WatchScorer))
    sys.modules["rel_faulty"] = mod
    plugins.register_plugin(mod)
    try:
        cfg = toy_config(tmp_path, generator="toy-faulty", scorer="toy-watch", strategy="best-of-n", budget=24)
        out = tmp_path / "run"
        assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    finally:
        plugins.unregister_plugin(mod)
        sys.modules.pop("rel_faulty")
    all_rows = rows(out)
    filtered = [r for r in all_rows if r[5] == "FILTERED"]
    reasons = [r[7] for r in filtered]
    for kind in ("all-black image", "NaN/inf in image", "safety checker flagged the image"):
        assert sum(kind in r for r in reasons) >= 2, (kind, reasons)
    assert all(r[6] is None and r[8] == "{}" for r in filtered)  # not scored: no potential, no sub-score
    ok = [r for r in all_rows if r[5] == "OK"]
    assert len(SEEN) == len(ok)  # the scorer saw the OK images only
    assert all(np.isfinite(im).all() and im.max() > 0 for im in SEEN)
    assert all(r[6] is not None for r in ok)
    figures("5-filtered", faults=len(filtered), candidates_checked=len(all_rows), scored=0)
