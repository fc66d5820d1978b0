"""Stepping (eacps.stepping) on the tiny pipelines: the generator suite's stepping checks on every scheduler
(start -> advance in pieces -> decode is generate, previews decode x0), marginals are the schedulers' own,
stochastic noise is per trajectory, refused setups fail up front.

Measured on CPU fp32 (torch 2.13, diffusers 0.42): start + advance(T) + decode equals ``generate`` bit for bit
for every case below (max difference 0.0); the tests allow ``TOL`` = 1e-5 for other BLAS builds.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from eacps_diffusers import DiffusersGenerator
from eacps_diffusers.tiny import CALL_KWARGS, tiny_pipeline

from eacps import Recipe, Status, capabilities
from eacps.stepping import StateCache, generate_paths
from eacps.testing import GeneratorCase, GeneratorConformance
from eacps.trajectory import Trajectory

TOL = 1e-5
STEPS, SIZE = 4, 32
CASES = [
    ("sd", None),  # DDIM
    ("sd", "DDPMScheduler"),
    ("sd", "EulerDiscreteScheduler"),
    ("sd", "EulerAncestralDiscreteScheduler"),
    ("sdxl", None),  # Euler
    ("sdxl", "DDIMScheduler"),
    ("sd3", None),  # flow matching
    ("flux", None),  # flow matching, packed latents
    ("pixart-sigma", None),  # DDIM, learned sigma, T5 attention masks
    ("pixart-alpha", "EulerAncestralDiscreteScheduler"),
    ("sana", None),  # flow matching, float32 latents, Gemma2 with masks
]
IDS = [f"{f}-{s or 'default'}" for f, s in CASES]


def make(family: str, scheduler: str | None = None, **params) -> DiffusersGenerator:
    params.setdefault("call_kwargs", CALL_KWARGS[family])
    return DiffusersGenerator.from_pipe(tiny_pipeline(family), steps=STEPS, height=SIZE, width=SIZE,
                                        scheduler=scheduler, **params)


def images(gens) -> list[np.ndarray]:
    assert all(g.status is Status.OK for g in gens), [g.reason for g in gens]
    return [g.image for g in gens]


RECIPES = [Recipe.from_seed(1), Recipe.from_seed(2), Recipe.from_seed(3).pcn(0.4, 9)]


#: the generator suite's stepping checks that hold on every scheduler (the suite itself, stepping section included,
#: runs on the deterministic setups in test_conformance.py: a stochastic scheduler draws per-step noise from the
#: recipe, so two recipes of the same initial noise differ, which the suite's noise-recipe check refuses)
SUITE_CHECKS = ["test_stepping_composes_generate", "test_stepping_advance_in_pieces", "test_stepping_previews"]


@pytest.mark.parametrize(("family", "scheduler"), CASES, ids=IDS)
def test_the_suites_stepping_checks_hold_on_every_scheduler(family, scheduler, condition):
    gen = make(family, scheduler)
    assert gen.supports_stepping and "stepping" in capabilities.offered(gen)
    case = GeneratorCase(lambda **kw: make(family, scheduler, **kw), condition, seeds=(1, 2, 3), tolerance=TOL,
                         stepping_tolerance=TOL)
    for check in SUITE_CHECKS:
        getattr(GeneratorConformance(), check)(case)


def test_advancing_by_zero_steps_and_a_reordered_batch(condition):
    """Beyond the suite: advancing by zero steps is allowed, and a selected and re-concatenated batch (what the
    core does) continues the same way."""
    gen = make("sd")
    traj = gen.start(RECIPES, condition)
    once = gen.advance(traj, condition, STEPS)
    part = gen.advance(traj, condition, 1)
    assert gen.advance(part, condition, 1).step == 1
    moved = gen.advance(Trajectory.concat([part.select([2]), part.select([0])]), condition, STEPS)
    torch.testing.assert_close(moved.latents[0], once.latents[2], atol=1e-5, rtol=0)


def _known_pair(gen, condition) -> tuple[torch.Tensor, torch.Tensor]:
    shape = gen.start(RECIPES[:1], condition).latents.shape
    g = torch.Generator().manual_seed(0)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g)


@pytest.mark.parametrize(("family", "scheduler"), CASES, ids=IDS)
def test_marginal_is_the_schedulers_own_noising(family, scheduler, condition):
    gen = make(family, scheduler)
    x0, eps = _known_pair(gen, condition)
    traj = gen.start(RECIPES[:1], condition)
    sched = type(gen.pipe.scheduler).from_config(gen.pipe.scheduler.config)
    ours = gen.stepper.scheduler(STEPS)
    for k in (1, 2, 3):
        a, b = gen.marginal(gen.advance(traj, condition, k))
        t = ours.timesteps[k : k + 1]  # the timestep of the next model call
        if type(sched).__name__ == "FlowMatchEulerDiscreteScheduler":
            expected = ours.scale_noise(x0, t, eps)
        else:
            sched.set_timesteps(STEPS)
            assert torch.equal(sched.timesteps, ours.timesteps.cpu())
            expected = sched.add_noise(x0, eps, t.cpu())
        torch.testing.assert_close(a * x0 + b * eps, expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="no branch at step 0"):
        gen.marginal(traj)


@pytest.mark.parametrize("scheduler", ["EulerAncestralDiscreteScheduler", "DDPMScheduler"])
def test_stochastic_noise_is_per_trajectory_and_paths_regenerate_exactly(scheduler, condition):
    gen = make("sd", scheduler)
    batch = gen.advance(gen.start(RECIPES, condition), condition, STEPS)
    alone = gen.advance(gen.start(RECIPES[1:2], condition), condition, STEPS)
    # a stream is (seed, model calls so far): replayed when its live generator state is no longer kept
    part = gen.advance(gen.start(RECIPES, condition), condition, 2)
    gen.stepper.streams.clear()
    assert torch.equal(gen.advance(part, condition, STEPS).latents, batch.latents)
    # each trajectory's per-step noise comes from its own recipe, not from its place in the batch (another batch
    # composition rounds differently: 1.1e-4 on latents of magnitude ~10 seen under load; a wrong noise is O(1))
    torch.testing.assert_close(alone.latents[0], batch.latents[1], atol=1e-4, rtol=1e-4)
    paths = [Recipe.from_seed(1).branch(2, 0.5, 7), Recipe.from_seed(1).branch(2, 0.5, 8),
             Recipe.from_seed(2).with_until(2)]
    first = images(generate_paths(gen, paths, condition))
    again = images(generate_paths(make("sd", scheduler), paths, condition, cache=StateCache()))
    for r, a, b in zip(paths, first, again, strict=True):
        assert np.array_equal(a, b), f"{r.key} did not regenerate exactly"
    assert not np.allclose(first[0], first[1], atol=1e-3)  # two branches of one parent differ
    # a branched path computed alone (another batch composition, so other float rounding) is the same image:
    # its noise depends on its recipe, not on the bytes of its state
    (alone_img,) = images(generate_paths(make("sd", scheduler), paths[1:2], condition, cache=StateCache()))
    assert np.abs(alone_img - first[1]).max() <= 1e-4
    # a path with no branch is the plain generate image
    (plain,) = images(gen.generate([Recipe.from_seed(2)], condition))
    (path,) = images(generate_paths(gen, [Recipe.from_seed(2)], condition))
    assert np.abs(plain - path).max() <= TOL


def _count_model_calls(gen) -> list[int]:
    calls = [0]
    den = getattr(gen.pipe, "unet", None) or gen.pipe.transformer
    den.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


@pytest.mark.parametrize(
    ("family", "params", "why"),
    [
        ("sana", {"call_kwargs": {"max_sequence_length": 16}}, "cannot step with resolution binning"),
        ("pixart-sigma", {"call_kwargs": {"max_sequence_length": 16, "clean_caption": False}},
         "cannot step with resolution binning"),
        ("sd-img2img", {}, "generator mode"),
        ("sd", {"scheduler": "DPMSolverMultistepScheduler"}, "cannot step with scheduler 'DPMSolverMultistep"),
        ("sd", {"noise_mode": "generator"}, "generator mode"),
        ("sd3", {"scheduler_kwargs": {"stochastic_sampling": True}}, "stochastic_sampling flow matching cannot step"),
        ("sd", {"call_kwargs": {"cross_attention_kwargs": {"scale": 0.5}}}, "cannot step with call_kwargs ['cross_"),
    ],
)
def test_setups_that_cannot_step_are_refused_before_compute(family, params, why, condition):
    params.setdefault("call_kwargs", CALL_KWARGS[family])
    gen = DiffusersGenerator.from_pipe(tiny_pipeline(family), steps=STEPS, height=SIZE, width=SIZE, **params)
    calls = _count_model_calls(gen)
    problem = gen.stepping_problem()
    assert problem is not None and why in problem and "\n" not in problem
    assert "stepping" not in gen.capabilities and "stepping" not in capabilities.offered(gen)
    with pytest.raises(ValueError, match="cannot step"):
        gen.check([Recipe.from_seed(1).branch(1, 0.5, 2)])
    with pytest.raises(ValueError, match="cannot step"):
        gen.start([Recipe.from_seed(1)], condition)

    class Stepping:
        name = "fk-steering"
        requires = frozenset({"stepping"})

    assert "needs stepping" in capabilities.problem(Stepping(), gen)
    assert calls[0] == 0, "a refused setup ran the model"


def test_bfloat16_euler_previews_decode_and_finals_equal_generate(condition):
    """Euler keeps its clean prediction in float32 while the VAE is bfloat16: decode casts (it used to fail)."""
    from diffusers import StableDiffusionXLPipeline
    from eacps_diffusers.tiny import sdxl_components

    pipe = StableDiffusionXLPipeline(**sdxl_components()).to(torch.bfloat16)  # fresh modules, not the shared ones
    pipe.set_progress_bar_config(disable=True)
    gen = DiffusersGenerator.from_pipe(pipe, steps=STEPS, height=SIZE, width=SIZE)
    assert gen.noise_dtype == torch.bfloat16
    traj = gen.advance(gen.start(RECIPES[:2], condition), condition, 2)
    assert all(np.isfinite(im).all() for im in images(gen.decode(traj.x0, condition)))
    final = images(gen.decode(gen.advance(traj, condition, STEPS).latents, condition))
    direct = images(gen.generate(RECIPES[:2], condition))
    assert max(np.abs(a - b).max() for a, b in zip(final, direct, strict=True)) <= TOL


def test_advance_and_decode_respect_the_batch_limit_and_split_on_out_of_memory(condition, monkeypatch):
    from eacps.engine.batch import Batch, BatchComputer
    from eacps.store import quantize

    gen = make("sd", "EulerAncestralDiscreteScheduler", max_batch_size=2)
    reference = make("sd", "EulerAncestralDiscreteScheduler")
    recipes = [Recipe.from_seed(s).with_until(STEPS - 1) for s in (5, 6, 7)]
    expected = images(generate_paths(reference, recipes, condition))
    real, sizes = gen.stepper.advance, []

    def advance(traj, cond, until):
        sizes.append(len(traj))
        if len(traj) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return real(traj, cond, until)

    monkeypatch.setattr(gen.stepper, "advance", advance)
    with pytest.raises(torch.OutOfMemoryError):  # the generator lets it out: the engine is the one place to split
        gen.advance(gen.start(recipes, condition), condition, STEPS)
    computer = BatchComputer(gen, None)
    got = computer.generate(Batch(tuple(recipes), condition))  # path recipes, through eacps.stepping
    assert sizes[-3:] == [1, 1, 1] and computer.fits == 1  # chunks of 2 refused, then one at a time
    for g, e in zip(got, expected, strict=True):
        assert g.status is Status.OK
        np.testing.assert_allclose(g.image, quantize(e), atol=1 / 255 + 1e-6, rtol=0)
    monkeypatch.setattr(gen.stepper, "advance", lambda *a: (_ for _ in ()).throw(RuntimeError("shape mismatch")))
    failed = BatchComputer(gen, None).generate(Batch(tuple(recipes), condition))
    assert all(g.status is Status.FAILED and "shape mismatch" in g.reason for g in failed)  # the batch fails


VARIANTS = [
    ("sd", {"guidance_scale": 1.0}),  # no CFG: one pass per step
    ("sd", {"call_kwargs": {"eta": 0.7}}),  # stochastic DDIM
    ("sd", {"call_kwargs": {"guidance_rescale": 0.7}}),
    ("sd", {"scheduler": "DDIMScheduler", "scheduler_kwargs": {"timestep_spacing": "trailing"}}),
    ("sd", {"scheduler": "EulerDiscreteScheduler", "scheduler_kwargs": {"timestep_spacing": "trailing"}}),
    ("sdxl", {"negative_prompt": "ugly", "guidance_scale": 3.0}),
    ("sd3", {"guidance_scale": 1.0}),
]


@pytest.mark.parametrize(("family", "params"), VARIANTS, ids=[f"{f}-{sorted(p)[0]}" for f, p in VARIANTS])
def test_call_settings_are_honoured_when_stepping(family, params, condition):
    """Guidance off, eta, guidance rescale, schedule spacing, negative prompts: in pieces, still ``generate``."""
    gen = make(family, **params)
    assert gen.stepping_problem() is None
    direct = images(gen.generate(RECIPES, condition))
    traj = gen.advance(gen.start(RECIPES, condition), condition, 2)
    stepwise = images(gen.decode(gen.advance(traj, condition, STEPS).latents, condition))
    assert max(np.abs(a - b).max() for a, b in zip(direct, stepwise, strict=True)) <= TOL


@pytest.mark.parametrize("scheduler", ["EulerAncestralDiscreteScheduler", "DDPMScheduler"])
def test_each_row_keeps_its_recipes_noise_stream_through_select_concat_and_eviction(scheduler, condition):
    """A row's per-step noise is its origin recipe's stream, whatever its place in the batch and whatever the
    stepper still remembers: two rows with the same state but different recipes diverge, and a reordered batch
    advanced after every live stream state is forgotten is the same as the original batch."""
    gen = make("sd", scheduler)
    part = gen.advance(gen.start(RECIPES, condition), condition, 2)
    once = gen.advance(part, condition, STEPS)
    gen.stepper.streams.clear()
    assert len(gen.stepper.streams) == 0
    swapped = gen.advance(Trajectory.concat([part.select([2]), part.select([0, 1])]), condition, STEPS)
    assert swapped.origins == (RECIPES[2], RECIPES[0], RECIPES[1])
    for i, j in ((0, 2), (1, 0), (2, 1)):
        torch.testing.assert_close(swapped.latents[i], once.latents[j], atol=1e-4, rtol=1e-4)
    # the same state under another recipe draws that recipe's noise: the stream is never read from the tensors
    twin = Trajectory(part.latents[:1], part.x0[:1], 2, STEPS, (RECIPES[1],))
    other = gen.advance(twin, condition, STEPS)
    mine = gen.advance(part.select([0]), condition, STEPS)
    assert not torch.allclose(other.latents, mine.latents, atol=1e-3)


@pytest.mark.parametrize("scheduler", ["EulerAncestralDiscreteScheduler", "DDPMScheduler"])
def test_branches_regenerate_from_their_recipes_after_cache_and_stream_eviction(scheduler, condition):
    """Branched paths through a state cache of one entry and a stream table of one live state (everything evicted
    as it goes) are the images a fresh generator computes from the recipes alone."""
    paths = [Recipe.from_seed(4).branch(1, 0.6, 11).branch(3, 0.4, 12), Recipe.from_seed(4).branch(1, 0.6, 13),
             Recipe.from_seed(5).branch(2, 0.5, 11)]
    gen = make("sd", scheduler)
    gen.stepper.streams.max_live = 1
    tight = images(generate_paths(gen, paths, condition, cache=StateCache(max_states=1)))
    again = images(generate_paths(gen, paths[::-1], condition, cache=StateCache(max_states=1)))[::-1]
    fresh = images(generate_paths(make("sd", scheduler), paths, condition, cache=StateCache()))
    for r, a, b, c in zip(paths, tight, again, fresh, strict=True):
        assert np.abs(a - c).max() <= 1e-4 and np.abs(b - c).max() <= 1e-4, f"{r.key} left its recipe"
    assert not np.allclose(fresh[0], fresh[1], atol=1e-3)
    (winner,) = images(gen.generate([paths[0]], condition))  # generate follows the path recipe whole
    assert np.abs(winner - fresh[0]).max() <= 1e-4


def test_the_stepper_is_built_once_by_load_with_its_family_record(condition):
    from eacps_diffusers.stepping import FAMILY_STEPS, SCHEDULERS

    gen = make("sdxl")
    gen.load()
    stepper = gen.stepper
    assert stepper.steps is FAMILY_STEPS["sdxl"] and stepper.sched_kind is SCHEDULERS["EulerDiscreteScheduler"]
    gen.load()
    assert gen.stepper is stepper
