"""Promise 4: out-of-memory injected at batch size B splits the batch (B -> B/2 -> ... -> 1), every candidate's
noise handed to the model is bit-identical to a run without out-of-memory, the stored results equal that
run's, and a candidate is FAILED only when batch size 1 does not fit.

"Equal" is exact for recipes, statuses, cache keys and image names, and for every candidate whose 8-bit PNG
is byte-identical. The UNet's float output itself depends on the batch size at the 1e-7 level (CPU
convolutions sum in a batch-dependent order: measured 3e-7 between one batch of 8 and two of 4), so a
pixel that sits on an 8-bit rounding boundary can land one level off; the test bounds that to one level
and counts the images it touched.

End to end: ``eacps run`` on the digits testbed with a digits generator subclass that raises
``torch.OutOfMemoryError`` for calls larger than ``fits`` and records the noises it hands to the UNet.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from configs import digits, edit, write
from eacps_digits.generator import DigitsGenerator, DigitsParams
from runs import digest, rows, toy_config
from toy import ToyGenerator, ToyGeneratorParams, ToyMeanScorer

from eacps import Condition, Generated, Recipe, Status, hookimpl, plugins
from eacps.commands.cli import main
from eacps.engine.batch import Batch, BatchComputer, image_problem, is_oom
from eacps.potential import Calibration, Criterion, Potential
from eacps.store import load_png, quantize

#: per run name: the batch sizes asked for, and the noise each recipe key was handed to the model with
CALLS: dict[str, list[int]] = {}
NOISES: dict[str, dict[str, torch.Tensor]] = {}


class OOMParams(DigitsParams):
    fits: int = 1_000_000  # the largest batch that "fits in memory" (0: none does)
    tag: str = "ref"  # which record this run writes to (not part of settings(): same fingerprint)


class OOMDigits(DigitsGenerator):
    """``digits`` whose calls above ``fits`` candidates raise out-of-memory, as a GPU would."""

    name = "digits-oom"
    Params = OOMParams

    def generate(self, recipes, condition, *, steps=None):
        p: OOMParams = self.params  # type: ignore[assignment]
        CALLS.setdefault(p.tag, []).append(len(recipes))
        if len(recipes) > p.fits:
            raise torch.OutOfMemoryError(f"CUDA out of memory (injected at batch size {len(recipes)})")
        return super().generate(recipes, condition, steps=steps)

    def noises(self, recipes, condition):  # what DigitsGenerator.generate feeds the UNet
        z = super().noises(recipes, condition)
        seen = NOISES.setdefault(self.params.tag, {})  # type: ignore[attr-defined]
        for r, zi in zip(recipes, z, strict=True):
            assert r.key not in seen or torch.equal(seen[r.key], zi)
            seen[r.key] = zi.clone()
        return z


CONFIG = digits("eacps", 16, criteria=("consistency", "realism"), batch_size=8,
                params={"k_global": 8, "m": 2, "k_local": 4, "neighborhood": "pcn"})
CONFIG = edit(CONFIG, "conditions", [{"id": "three", "class_label": 3}])
COLS = "search, seq, role, condition, recipe, steps, cache_key, status, potential, reason, scores, image"


@pytest.fixture
def oom_plugin(monkeypatch):
    monkeypatch.setenv("EACPS_LOAD_PLUGINS", "eacps-digits")
    mod = types.ModuleType("rel_oom")
    mod.register_generators = hookimpl(lambda register: register(OOMDigits))
    sys.modules["rel_oom"] = mod
    plugins.register_plugin(mod)
    CALLS.clear()
    NOISES.clear()
    try:
        yield
    finally:
        plugins.unregister_plugin(mod)
        sys.modules.pop("rel_oom")


def run(tmp_path, tag: str, fits: int) -> list:
    cfg = write(tmp_path / f"{tag}.toml",
                edit(CONFIG, "generator", {"name": "digits-oom", "params": {"steps": 3, "fits": fits, "tag": tag}}))
    expect = 1 if fits == 0 else 0  # nothing fits: every candidate FAILED, and a run with no OK candidate exits 1
    assert main(["run", str(cfg), "--out", str(tmp_path / tag), "--quiet"]) == expect
    return rows(tmp_path / tag, COLS)


def compare_stores(ref_dir, ref: list, got_dir, got: list) -> int:
    """Exact equality, except where an image's PNG differs by float rounding (then at most one 8-bit level per
    pixel, and only that candidate's potential/scores differ). Returns the number of such images."""
    assert len(got) == len(ref)
    ref_png, got_png = digest(ref_dir), digest(got_dir)
    touched = 0
    for a, b in zip(ref, got, strict=True):
        assert a[:8] == b[:8] and a[9] == b[9] and a[11] == b[11]  # ids, recipe, steps, cache key, status, image
        if ref_png[a[11]] == got_png[b[11]]:
            assert a == b  # same image, same scores and potential, bit for bit
            continue
        touched += 1
        diff = np.abs(load_png(ref_dir / a[11]).astype(np.float64) - load_png(got_dir / b[11]))
        assert diff.max() <= 1.5 / 255, diff.max() * 255
        assert abs(a[8] - b[8]) < 0.1
    best = [max((r for r in rs if r[2] == "search"), key=lambda r: r[8])[4] for rs in (ref, got)]
    assert best[0] == best[1]  # the same winner
    return touched


@pytest.mark.slow
def test_oom_splits_batches_noises_bit_identical_failed_only_at_1(tmp_path, oom_plugin, capsys, figures):
    ref = run(tmp_path, "ref", 1_000_000)
    assert len(ref) == 17 and all(r[7] == "OK" for r in ref)  # the prior + a budget of 16
    assert max(CALLS["ref"]) == 8  # the reference really generates batches of 8
    split, touched = {}, 0
    for fits in (4, 1):
        tag = f"fits{fits}"
        got = run(tmp_path, tag, fits)
        touched += compare_stores(tmp_path / "ref", ref, tmp_path / tag, got)
        sizes = CALLS[tag]
        assert max(s for s in sizes if s <= fits) == fits and 8 in sizes  # asked for 8, split down to what fits
        if fits == 1:
            assert {8, 4, 2, 1} <= set(sizes)
        assert NOISES[tag].keys() == NOISES["ref"].keys() and len(NOISES[tag]) == 17
        for key, z in NOISES["ref"].items():  # the noise of every candidate, bit for bit
            assert torch.equal(NOISES[tag][key], z), key
        split[fits] = sum(1 for s in sizes if s > fits)
    # OOM always: nothing fits, every candidate FAILED naming batch size 1; the run still finishes
    never = run(tmp_path, "never", 0)
    assert len(never) == 17
    assert all(r[7] == "FAILED" and r[8] is None for r in never)
    assert all(r[9].startswith("out of memory at batch size 1 (digits-oom): OutOfMemoryError") for r in never)
    assert min(CALLS["never"]) == 1 and 8 in CALLS["never"]
    capsys.readouterr()
    figures(
        "4-oom",
        runs=4,
        candidates_checked=3 * 17,
        noises_compared=2 * 17,
        noise_differences=0,
        images_one_level_off=touched,
        ooms_injected=split[4] + split[1] + len(CALLS["never"]),
        failed_when_size_1_fits=0,
        failed_when_nothing_fits=len(never),
    )


# -- promise 5: black, NaN and safety-filtered images (moved from tests/reliability/test_05_filtered.py) -------------
# Promise 5: black, NaN and safety-filtered images are FILTERED with their reason and never reach a scorer.


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


# -- the batch computer on the toy generator ---------------------------------------------------------------------------
def toy_computer(gen=None, *, timeout_s=None, **criteria) -> BatchComputer:
    crit = [Criterion(name, scorer, 1.0) for name, scorer in (criteria or {"consistency": ToyMeanScorer()}).items()]
    return BatchComputer(gen or ToyGenerator(), Potential(crit), timeout_s=timeout_s)


def test_images_are_quantized_to_8_bits_and_each_equals_its_recipe_generated_alone():
    comp = toy_computer()
    cond = Condition("c")
    recipes = tuple(Recipe.from_seed(s) for s in range(5))
    gens = comp.generate(Batch(recipes, cond))
    for r, g in zip(recipes, gens, strict=True):
        assert g.status is Status.OK
        assert np.array_equal(g.image * 255, np.round(g.image * 255))  # what is stored is what is scored
        alone = ToyGenerator().generate([r], cond)[0].image
        assert np.array_equal(g.image, quantize(alone))


def test_recipes_are_generated_in_groups_of_one_schedule():
    calls = []

    class Spy(ToyGenerator):
        def generate(self, recipes, condition, *, steps=None):
            calls.append((len(recipes), steps))
            return super().generate(recipes, condition, steps=steps)

    comp = toy_computer(Spy())
    recipes = (Recipe.from_seed(0), Recipe.from_seed(1, steps=4), Recipe.from_seed(2), Recipe.from_seed(3, steps=4))
    gens = comp.generate(Batch(recipes, Condition("c")))
    assert sorted(calls) == [(2, 4), (2, 10)]
    # the same seed at another schedule is another image: each group ran at its own steps
    assert not np.array_equal(gens[1].image, comp.generate(Batch((Recipe.from_seed(1),), Condition("c")))[0].image)
    assert [comp.steps_of(r) for r in recipes] == [10, 4, 10, 4]


@pytest.mark.parametrize("image, level, problem", [
    (None, 1e-6, "generator returned no image"),
    (np.full((2, 2, 1), np.nan, np.float32), 1e-6, "NaN/inf in image"),
    (np.full((2, 2, 1), np.inf, np.float32), 1e-6, "NaN/inf in image"),
    (np.zeros((2, 2, 1), np.float32), 1e-6, "all-black image"),
    (np.full((2, 2, 1), 0.01, np.float32), 0.02, "all-black image"),  # below the generator's own black level
    (np.full((2, 2, 1), 0.01, np.float32), 1e-6, None),
])
def test_image_problem(image, level, problem):
    assert image_problem(image, level) == problem


def test_black_images_are_filtered_and_never_scored():
    scored = []

    class Counting(ToyMeanScorer):
        def score(self, images, condition):
            scored.append(len(images))
            return super().score(images, condition)

    comp = toy_computer(ToyGenerator(ToyGeneratorParams(black_below=0.0)), consistency=Counting())
    recipes = tuple(Recipe.from_seed(s) for s in range(12))
    pairs = comp.compute(Batch(recipes, Condition("c")))
    black = [g for g, _ in pairs if g.status is Status.FILTERED]
    assert 0 < len(black) < 12
    assert all(g.reason == "all-black image" and sc is None for g, sc in pairs if g.status is Status.FILTERED)
    assert all(sc is not None and sc.potential is not None for g, sc in pairs if g.status is Status.OK)
    assert sum(scored) == 12 - len(black)


def test_a_failing_generator_fails_its_group_with_the_reason():
    comp = toy_computer(ToyGenerator(ToyGeneratorParams(fail_all=True)))
    pairs = comp.compute(Batch((Recipe.from_seed(0), Recipe.from_seed(1)), Condition("c")))
    assert [(g.status, g.reason, sc) for g, sc in pairs] == [
        (Status.FAILED, "generator (toy): RuntimeError: toy generator exploded", None)] * 2


def test_a_generator_returning_too_few_outputs_fails_the_batch():
    class Short(ToyGenerator):
        def generate(self, recipes, condition, *, steps=None):
            return super().generate(recipes, condition, steps=steps)[:-1]

    gens = toy_computer(Short()).generate(Batch((Recipe.from_seed(0), Recipe.from_seed(1)), Condition("c")))
    assert all(g.status is Status.FAILED and "returned 1 outputs for 2 recipes" in g.reason for g in gens)


def test_a_generator_call_past_the_time_limit_fails_its_candidates():
    comp = toy_computer(ToyGenerator(ToyGeneratorParams(sleep=2.0)), timeout_s=0.2)
    gens = comp.generate(Batch((Recipe.from_seed(0),), Condition("c")))
    assert gens[0].status is Status.FAILED and "timed out after 0.2 s" in gens[0].reason


class OOMToy(ToyGenerator):
    """The toy generator raising out-of-memory for calls above ``fits`` recipes (a GPU's behaviour)."""

    def __init__(self, fits: int):
        super().__init__()
        self.fits, self.sizes = fits, []

    def generate(self, recipes, condition, *, steps=None):
        self.sizes.append(len(recipes))
        if len(recipes) > self.fits:
            raise torch.OutOfMemoryError(f"CUDA out of memory (injected at {len(recipes)})")
        return super().generate(recipes, condition, steps=steps)


def test_out_of_memory_halves_the_batch_and_later_calls_start_at_the_size_that_fitted():
    cond, recipes = Condition("c"), tuple(Recipe.from_seed(s) for s in range(8))
    ref = toy_computer().generate(Batch(recipes, cond))
    gen = OOMToy(fits=2)
    comp = toy_computer(gen)
    gens = comp.generate(Batch(recipes, cond))
    assert gen.sizes == [8, 4, 2, 2, 4, 2, 2]
    assert comp.fits == 2
    assert all(np.array_equal(a.image, b.image) for a, b in zip(gens, ref, strict=True))
    gen.sizes.clear()
    comp.generate(Batch(recipes, cond))
    assert gen.sizes == [2, 2, 2, 2]  # no more out-of-memory errors


def test_out_of_memory_at_batch_size_1_fails_the_candidate():
    pairs = toy_computer(OOMToy(fits=0)).compute(Batch((Recipe.from_seed(0), Recipe.from_seed(1)), Condition("c")))
    assert all(g.status is Status.FAILED and g.reason.startswith("out of memory at batch size 1 (toy)")
               for g, _ in pairs)
    assert is_oom(torch.OutOfMemoryError("x")) and is_oom(RuntimeError("CUDA out of memory."))
    assert not is_oom(RuntimeError("shape mismatch"))


def test_a_calibration_batch_gets_raw_scores_with_its_first_image_as_prior():
    seen = []

    class PriorScorer(ToyMeanScorer):
        def score(self, images, condition):
            seen.append(condition.prior)
            return super().score(images, condition)

    pot = Potential([Criterion("consistency", PriorScorer(), 1.0, calibration=Calibration(kind="standardize"))])
    comp = BatchComputer(ToyGenerator(), pot)
    recipes = tuple(Recipe.from_seed(s) for s in range(3))
    pairs = comp.compute(Batch(recipes, Condition("c"), calibrate="potential"))
    assert np.array_equal(seen[0], pairs[0][0].image)  # the prior's seed comes first
    means = [10.0 * float(np.mean(g.image)) for g, _ in pairs]
    assert [sc.scores["consistency"] for _, sc in pairs] == pytest.approx(means)  # raw: not standardized
