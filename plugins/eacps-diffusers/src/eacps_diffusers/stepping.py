"""Stepping (``eacps.stepping``) for diffusers pipelines: start / advance / decode / marginal per family.

The denoising loop of each supported pipeline is written out here, step for step as the pipeline's own
``__call__`` does it (prompt encoding, CFG batch order ``[negative, positive]``, ``scale_model_input``, the
scheduler step, the VAE decode), so that ``start -> advance(T) -> decode`` gives the image ``generate`` gives.
What differs between families is one record per family (``FamilySteps``: prompt encoding, model call, decode,
timestep shift, latent handling) and one per scheduler (``SchedulerKind``: stochastic or not, step index,
marginal), both chosen once when the ``Stepper`` is built (``DiffusersGenerator.load``). Prompt embeddings live
in a small per-condition cache and the configured schedulers in a per-length one, never in the Trajectory.

Supported: SD1.5/2.x, SDXL and PixArt-α/Σ with DDIM, DDPM, Euler and Euler-ancestral; SD3, FLUX and Sana with
flow-matching Euler. Anything else (img2img, multistep/higher-order schedulers such as DPM-Solver++, UniPC,
Heun, PixArt's and Sana's resolution binning) is refused by ``stepping_problem`` before any compute.

Stochastic schedulers (Euler-ancestral, DDPM, DDIM with ``eta > 0``): the per-step noise of trajectory i comes
from its own CPU ``torch.Generator``, seeded from its recipe exactly as ``generate`` seeds it (``stream_seed``:
the recipe's seed, advanced past the initial-noise draw). Each row's recipe is its origin
(``eacps.trajectory.Trajectory.origins``), which travels with the state through select, concat and branch
moves, so a stream after k model calls is ``(stream_seed(origin), k)``: a branched row continues its parent's
stream, a path's noise depends on its recipe alone, and a stream whose live state is no longer kept is replayed
from the recipe (never re-seeded from the state's bytes).
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from eacps import Condition, Generated, Recipe
from eacps.trajectory import Trajectory


class Host(Protocol):
    """What the stepper needs of its ``DiffusersGenerator`` (public members only)."""

    params: Any

    @property
    def pipe(self) -> Any: ...

    @property
    def default_steps(self) -> int: ...

    @property
    def noise_dtype(self) -> torch.dtype: ...

    def noise_shape(self, condition: Condition) -> tuple[int, ...]: ...

    def size(self) -> tuple[int, int]: ...

    def call_kwargs_for(self, condition: Condition, steps: int) -> dict[str, Any]: ...

    def call_default(self, name: str) -> Any: ...

    def call_kwarg(self, name: str) -> Any: ...

    def judge(self, image: np.ndarray, nsfw: bool) -> Generated: ...


# -- noise streams ------------------------------------------------------------------------------
def stream_seed(recipe: Recipe) -> int:
    """The seed of a candidate's own CPU generator (stochastic schedulers): its seed, as in plain diffusers, or
    for a noise-space recipe a stable 63-bit seed from its canonical key."""
    if recipe.is_seed_only:
        return int(recipe.seed)  # type: ignore[arg-type]
    return int.from_bytes(hashlib.sha256(recipe.key.encode()).digest()[:8], "big") % (2**63 - 1) or 1


class NoiseStreams:
    """Per-trajectory noise generators for stochastic schedulers.

    A trajectory's stream is ``Generator(stream_seed(origin))`` advanced past the initial-noise draw (as
    ``generate`` leaves it) and then by one draw per model call, so after ``k`` calls it is fully described by
    ``(seed, k)``. Live generator states are kept for the most recent ``(seed, k)`` (an LRU of ``max_live``); any
    other is replayed from the seed, so an evicted stream is rebuilt from its recipe, bit for bit."""

    def __init__(self, init_shape: tuple[int, ...], init_dtype: torch.dtype, max_live: int = 1024) -> None:
        self.init_shape, self.init_dtype = init_shape, init_dtype
        self.max_live = max_live
        self._live: OrderedDict[tuple[int, int], torch.Tensor] = OrderedDict()

    def __len__(self) -> int:
        return len(self._live)

    def clear(self) -> None:
        """Forget every live state (later streams are replayed from their recipes)."""
        self._live.clear()

    def take(self, origins: Sequence[Recipe], step: int, draw: tuple[int, ...],
             dtype: torch.dtype) -> list[torch.Generator]:
        """Each row's generator after ``step`` model calls (``draw``: one row's per-step noise shape)."""
        return [self._generator(stream_seed(r), step, draw, dtype) for r in origins]

    def keep(self, origins: Sequence[Recipe], step: int, gens: Sequence[torch.Generator]) -> None:
        for r, g in zip(origins, gens, strict=True):
            key = (stream_seed(r), step)
            self._live[key] = g.get_state()
            self._live.move_to_end(key)
            while len(self._live) > self.max_live:
                self._live.popitem(last=False)

    def _generator(self, seed: int, step: int, draw: tuple[int, ...], dtype: torch.dtype) -> torch.Generator:
        g = torch.Generator("cpu")
        state = self._live.get((seed, step))
        if state is not None:
            g.set_state(state)
            return g
        g.manual_seed(seed)
        torch.randn(self.init_shape, generator=g, dtype=self.init_dtype)  # as ``generate``'s generator
        for _ in range(step):
            torch.randn(draw, generator=g, dtype=dtype)  # the scheduler's per-step draw (randn_tensor on CPU)
        return g


# -- schedulers ---------------------------------------------------------------------------------
def _marginal_ddim(sched: Any, k: int) -> tuple[float, float]:
    prev = int(sched.timesteps[k - 1]) - sched.config.num_train_timesteps // sched.num_inference_steps
    abar = float(sched.alphas_cumprod[prev]) if prev >= 0 else float(sched.final_alpha_cumprod)
    return math.sqrt(abar), math.sqrt(1.0 - abar)


def _marginal_ddpm(sched: Any, k: int) -> tuple[float, float]:
    prev = int(sched.previous_timestep(int(sched.timesteps[k - 1])))
    abar = float(sched.alphas_cumprod[prev]) if prev >= 0 else 1.0
    return math.sqrt(abar), math.sqrt(1.0 - abar)


def _marginal_euler(sched: Any, k: int) -> tuple[float, float]:
    return 1.0, float(sched.sigmas[k])


def _marginal_flow(sched: Any, k: int) -> tuple[float, float]:
    sigma = float(sched.sigmas[k])
    return 1.0 - sigma, sigma


@dataclass(frozen=True)
class SchedulerKind:
    """How the loop drives one scheduler class: its family-facing kind, whether each step draws noise (given
    the call's ``eta``), whether it keeps a step index (set through ``set_begin_index``), whether ``step``
    returns the clean prediction, and the marginal ``x_k = a·x0 + b·eps`` after ``k`` calls."""

    kind: str
    stochastic: Callable[[float], bool]
    indexed: bool
    marginal: Callable[[Any, int], tuple[float, float]]
    flow: bool = False  # flow matching: x0 = x - sigma·v, computed by the loop
    takes_eta: bool = False


SCHEDULERS: dict[str, SchedulerKind] = {
    "DDIMScheduler": SchedulerKind("ddim", lambda eta: eta > 0, False, _marginal_ddim, takes_eta=True),
    "DDPMScheduler": SchedulerKind("ddpm", lambda eta: True, False, _marginal_ddpm),
    "EulerDiscreteScheduler": SchedulerKind("euler", lambda eta: False, True, _marginal_euler),
    "EulerAncestralDiscreteScheduler": SchedulerKind("euler", lambda eta: True, True, _marginal_euler),
    "FlowMatchEulerDiscreteScheduler": SchedulerKind("flow", lambda eta: False, True, _marginal_flow, flow=True),
}
"""Schedulers that can step from any step index (no multistep history), and how each is driven."""


# -- per-family records -------------------------------------------------------------------------
Embeds = dict[str, torch.Tensor]


@dataclass(frozen=True)
class FamilySteps:
    """One family's loop: prompt encoding (embeddings at batch size 1, and whether CFG runs), the model call on
    the (CFG-doubled) input, the decode to (images, nsfw flags or None), extra ``set_timesteps`` arguments,
    and how its latents are prepared and read."""

    schedulers: frozenset[str]
    call_kwargs: frozenset[str]
    encode: Callable[[Stepper, dict[str, Any], float], tuple[Embeds, bool]]
    call: Callable[[Stepper, torch.Tensor, torch.Tensor, _Expanded], torch.Tensor]
    decode: Callable[[Stepper, torch.Tensor], tuple[Any, list[bool] | None]]
    timesteps: Callable[[Stepper, Any, int], dict[str, Any]] | None = None
    scales_noise: bool = True  # initial latents x init_noise_sigma (else cast to the embeddings' dtype)
    float32_latents: bool = False  # Sana keeps its latents in float32
    scales_input: bool = True  # the loop calls scheduler.scale_model_input
    learned_sigma: bool = False  # a transformer with 2x output channels: keep the noise half
    guidance_embedded_unet: bool = False  # a UNet with time_cond_proj_dim (LCM) cannot step
    one_step_keeps_x0: bool = False  # PixArt-α's one-step call returns the clean prediction
    resolution_condition: bool = False  # PixArt-α at sample size 128 conditions on resolution and aspect ratio


class Stepper:
    """start / advance / decode / marginal for one ``DiffusersGenerator`` (its pipeline and params), with its
    family's record and its scheduler's kind chosen once, here."""

    def __init__(self, gen: Host, family: str, max_contexts: int = 8) -> None:
        self.gen = gen
        self.pipe = gen.pipe
        self.steps = FAMILY_STEPS[family]
        self.sched_kind = SCHEDULERS[type(self.pipe.scheduler).__name__]
        self.max_contexts = max_contexts
        self._contexts: OrderedDict[tuple[str, str | None], _Context] = OrderedDict()
        self._schedulers: dict[int, Any] = {}
        self.shape = gen.noise_shape(Condition(id="_"))
        self.streams = NoiseStreams(self.shape, gen.noise_dtype)

    @property
    def device(self) -> torch.device:
        return self.pipe._execution_device  # diffusers' own device rule (offload included)

    # -- context ---------------------------------------------------------------------------------
    def context(self, condition: Condition) -> _Context:
        kw = self.gen.call_kwargs_for(condition, self.gen.default_steps)
        key = (kw["prompt"], kw.get("negative_prompt"))
        if (ctx := self._contexts.get(key)) is None:
            ctx = self._build(kw)
            self._contexts[key] = ctx
            while len(self._contexts) > self.max_contexts:
                self._contexts.popitem(last=False)
        self._contexts.move_to_end(key)
        return ctx

    def _build(self, kw: dict[str, Any]) -> _Context:
        guidance = float(kw.get("guidance_scale", self.gen.call_default("guidance_scale") or 1.0))
        with torch.no_grad():
            embeds, cfg = self.steps.encode(self, kw, guidance)
        eta = float(kw.get("eta", 0.0))
        return _Context(cfg, guidance, embeds, eta, float(kw.get("guidance_rescale", 0.0)),
                        self.sched_kind.stochastic(eta))

    def scheduler(self, total: int) -> Any:
        """A copy of the pipeline's scheduler with the ``total``-step schedule the pipeline would set."""
        from diffusers.pipelines.flux.pipeline_flux import retrieve_timesteps

        if (sched := self._schedulers.get(total)) is None:
            sched = type(self.pipe.scheduler).from_config(self.pipe.scheduler.config)
            extra = self.steps.timesteps(self, sched, total) if self.steps.timesteps is not None else {}
            retrieve_timesteps(sched, total, self.device, **extra)
            self._schedulers[total] = sched
        return sched

    # -- the stepping methods ----------------------------------------------------------------------
    def start(self, noise: torch.Tensor, condition: Condition, total: int, recipes: Sequence[Recipe]) -> Trajectory:
        """``noise``: the recipes' initial noise as the pipeline's ``latents=``; scaled as ``prepare_latents`` does.
        Each row's origin is its recipe (its noise stream under a stochastic scheduler)."""
        ctx = self.context(condition)
        latents = noise.to(self.device)
        if self.steps.scales_noise:
            latents = latents * self.scheduler(total).init_noise_sigma
        else:
            latents = latents.to(dtype=torch.float32 if self.steps.float32_latents else ctx.embeds["prompt"].dtype)
        return Trajectory(latents, None, 0, total, tuple(recipes))

    @torch.no_grad()
    def advance(self, traj: Trajectory, condition: Condition, until: int) -> Trajectory:
        if not traj.step <= until <= traj.total:
            raise ValueError(f"advance from step {traj.step} to {until} is outside 0..{traj.total}")
        ctx = self.context(condition)
        kind = self.sched_kind
        # a copy: the step index this call sets is its own (a timed-out call may still be running)
        sched, x, x0 = copy.copy(self.scheduler(traj.total)), traj.latents, traj.x0
        if kind.indexed:
            sched.set_begin_index(traj.step)  # the first call of this piece is step ``traj.step``
        step_kwargs: dict[str, Any] = {"eta": ctx.eta} if kind.takes_eta else {}
        gens = None
        if ctx.stochastic:
            gens = self.streams.take(traj.origins, traj.step, (1, *x.shape[1:]), x.dtype)
            step_kwargs["generator"] = gens
        emb = _Expanded(ctx, x.shape[0])
        out = None
        for i in range(traj.step, until):
            t = sched.timesteps[i]
            pred = self._model(x, t, emb, sched)
            out = sched.step(pred, t, x, **step_kwargs, return_dict=True)
            if not kind.flow:
                x0 = out.pred_original_sample
            elif i == until - 1:  # only the last call's is kept; x_t = (1 - s) x0 + s eps, the model predicts eps - x0
                x0 = (x.float() - float(sched.sigmas[i]) * pred.float()).to(x.dtype)
            x = out.prev_sample
        if self.steps.one_step_keeps_x0 and traj.total == 1 and out is not None:
            x = out.pred_original_sample
        if gens is not None:
            self.streams.keep(traj.origins, until, gens)
        return traj.moved(x, x0, until)

    def _model(self, x: torch.Tensor, t: torch.Tensor, emb: _Expanded, sched: Any) -> torch.Tensor:
        """One model call for the batch ``x`` at timestep ``t``, CFG as the pipeline does it."""
        from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg

        ctx = emb.ctx
        inp = torch.cat([x] * 2) if ctx.cfg else x
        if self.steps.scales_input:
            inp = sched.scale_model_input(inp, t)
        pred = self.steps.call(self, inp, t, emb)
        if ctx.cfg:
            uncond, text = pred.chunk(2)
            pred = uncond + ctx.guidance * (text - uncond)
            if ctx.guidance_rescale > 0:
                pred = rescale_noise_cfg(pred, text, guidance_rescale=ctx.guidance_rescale)
        if self.steps.learned_sigma and self.pipe.transformer.config.out_channels // 2 == x.shape[1]:
            pred = pred.chunk(2, dim=1)[0]  # learned sigma (PixArt, Sana): the pipeline keeps the noise half
        return pred

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, condition: Condition) -> list[Generated]:
        """Latents -> images as the pipeline decodes them, judged like ``generate``'s (the safety checker here;
        NaN/inf and black by the engine's image filter)."""
        latents = latents.to(self.device, self.pipe.vae.dtype)  # a clean prediction may be float32 (Euler upcasts)
        image, nsfw = self.steps.decode(self, latents)
        images = np.asarray(image, dtype=np.float32)
        flags = nsfw or [False] * images.shape[0]
        return [self.gen.judge(images[i], bool(flags[i])) for i in range(images.shape[0])]

    def marginal(self, traj: Trajectory) -> tuple[float, float]:
        """``x_k = a·x0 + b·eps`` after ``k = traj.step`` model calls, as the scheduler wrote ``x_k``."""
        if not 1 <= traj.step < traj.total:
            raise ValueError(f"no branch at step {traj.step} of {traj.total}: it needs 1 <= step < {traj.total}")
        return self.sched_kind.marginal(self.scheduler(traj.total), traj.step)


@dataclass
class _Context:
    """What every model call of one condition needs (batch size 1, expanded per call)."""

    cfg: bool
    guidance: float
    embeds: Embeds
    eta: float
    guidance_rescale: float
    stochastic: bool


def _rows(t: torch.Tensor, n: int) -> torch.Tensor:
    return t.repeat(n, *[1] * (t.dim() - 1))


def _both(ctx: _Context, name: str, n: int) -> torch.Tensor:
    """Embedding ``name`` for ``n`` trajectories: ``[negative x n, positive x n]`` under CFG (the pipelines' order)."""
    e = ctx.embeds
    pos = _rows(e[name], n)
    if not ctx.cfg:
        return pos
    neg = {"prompt": "negative"}.get(name, f"negative_{name}")
    return torch.cat([_rows(e.get(neg, e[name]), n), pos])


class _Expanded:
    """The conditioning of one ``advance`` of ``n`` trajectories: each embedding is expanded (``_both``) at its
    first model call and reused by the others, as the pipelines expand once per call, not per step."""

    def __init__(self, ctx: _Context, n: int) -> None:
        self.ctx, self.n = ctx, n
        self._expanded: dict[str, torch.Tensor] = {}

    def __getitem__(self, name: str) -> torch.Tensor:
        if (t := self._expanded.get(name)) is None:
            t = self._expanded[name] = _both(self.ctx, name, self.n)
        return t


# -- prompt encoding: embeddings at batch size 1 (the pipeline encodes once, then repeats) -----------------
def _encode_sd(st: Stepper, kw: dict[str, Any], guidance: float) -> tuple[Embeds, bool]:
    cfg = guidance > 1
    pe, ne = st.pipe.encode_prompt(kw["prompt"], st.device, 1, cfg, kw.get("negative_prompt"),
                                   clip_skip=kw.get("clip_skip"))
    return ({"prompt": pe, "negative": ne} if cfg else {"prompt": pe}), cfg


def _encode_sdxl(st: Stepper, kw: dict[str, Any], guidance: float) -> tuple[Embeds, bool]:
    pipe, cfg = st.pipe, guidance > 1
    pe, ne, pool, npool = pipe.encode_prompt(prompt=kw["prompt"], device=st.device, num_images_per_prompt=1,
                                             do_classifier_free_guidance=cfg,
                                             negative_prompt=kw.get("negative_prompt"), clip_skip=kw.get("clip_skip"))
    h, w = kw["height"], kw["width"]
    proj = int(pool.shape[-1]) if pipe.text_encoder_2 is None else pipe.text_encoder_2.config.projection_dim
    ids = pipe._get_add_time_ids((h, w), (0, 0), (h, w), dtype=pe.dtype,  # the pipeline's own helper
                                 text_encoder_projection_dim=proj).to(st.device)
    out = {"prompt": pe, "pooled": pool, "time_ids": ids}
    if cfg:
        out.update(negative=ne, negative_pooled=npool)
    return out, cfg


def _encode_sd3(st: Stepper, kw: dict[str, Any], guidance: float) -> tuple[Embeds, bool]:
    cfg = guidance > 1
    pe, ne, pool, npool = st.pipe.encode_prompt(
        prompt=kw["prompt"], prompt_2=None, prompt_3=None, negative_prompt=kw.get("negative_prompt"),
        do_classifier_free_guidance=cfg, device=st.device, clip_skip=kw.get("clip_skip"),
        num_images_per_prompt=1, max_sequence_length=kw.get("max_sequence_length", 256))
    out = {"prompt": pe, "pooled": pool}
    if cfg:
        out.update(negative=ne, negative_pooled=npool)
    return out, cfg


def _encode_t5(st: Stepper, kw: dict[str, Any], guidance: float, **extra: Any) -> tuple[Embeds, bool]:
    """PixArt-α/Σ and Sana: T5/Gemma embeddings with attention masks."""
    gen, cfg = st.gen, guidance > 1
    pe, pm, ne, nm = st.pipe.encode_prompt(
        kw["prompt"], cfg, negative_prompt=kw.get("negative_prompt", ""), num_images_per_prompt=1,
        device=st.device, clean_caption=kw.get("clean_caption", gen.call_default("clean_caption")),
        max_sequence_length=kw.get("max_sequence_length", gen.call_default("max_sequence_length")), **extra)
    out = {"prompt": pe, "mask": pm}
    if cfg:
        out.update(negative=ne, negative_mask=nm)
    if st.steps.resolution_condition and st.pipe.transformer.config.sample_size == 128:
        h, w = kw["height"], kw["width"]
        out["resolution"] = torch.tensor([[h, w]]).to(dtype=pe.dtype, device=st.device)
        out["aspect_ratio"] = torch.tensor([[float(h / w)]]).to(dtype=pe.dtype, device=st.device)
    return out, cfg


def _encode_sana(st: Stepper, kw: dict[str, Any], guidance: float) -> tuple[Embeds, bool]:
    instruction = kw.get("complex_human_instruction", st.gen.call_default("complex_human_instruction"))
    return _encode_t5(st, kw, guidance, complex_human_instruction=instruction)


def _encode_flux(st: Stepper, kw: dict[str, Any], guidance: float) -> tuple[Embeds, bool]:
    pipe = st.pipe
    pe, pool, text_ids = pipe.encode_prompt(prompt=kw["prompt"], prompt_2=None, device=st.device,
                                            num_images_per_prompt=1,
                                            max_sequence_length=kw.get("max_sequence_length", 512))
    _, _, h, w = st.shape
    img_ids = pipe._prepare_latent_image_ids(1, h // 2, w // 2, st.device, pe.dtype)  # the pipeline's own helper
    out = {"prompt": pe, "pooled": pool, "text_ids": text_ids, "img_ids": img_ids}
    if pipe.transformer.config.guidance_embeds:
        out["guidance"] = torch.full([1], guidance, device=st.device, dtype=torch.float32)
    return out, False  # FLUX.1 is guidance-distilled: one pass per step


# -- model calls on the (CFG-doubled) input, as each pipeline's loop makes them -----------------------------
def _call_unet(st: Stepper, inp: torch.Tensor, t: torch.Tensor, added: dict[str, Any] | None,
               emb: _Expanded) -> torch.Tensor:
    return st.pipe.unet(inp, t, encoder_hidden_states=emb["prompt"], timestep_cond=None, cross_attention_kwargs=None,
                        added_cond_kwargs=added, return_dict=False)[0]


def _call_sd(st: Stepper, inp: torch.Tensor, t: torch.Tensor, emb: _Expanded) -> torch.Tensor:
    return _call_unet(st, inp, t, None, emb)


def _call_sdxl(st: Stepper, inp: torch.Tensor, t: torch.Tensor, emb: _Expanded) -> torch.Tensor:
    return _call_unet(st, inp, t, {"text_embeds": emb["pooled"], "time_ids": emb["time_ids"]}, emb)


def _call_pixart(st: Stepper, inp: torch.Tensor, t: torch.Tensor, emb: _Expanded) -> torch.Tensor:
    added: dict[str, Any] = {"resolution": None, "aspect_ratio": None}
    if "resolution" in emb.ctx.embeds:  # PixArt-α at sample size 128
        added = {k: emb[k] for k in ("resolution", "aspect_ratio")}
    step_t = (t[None] if t.dim() == 0 else t).to(inp.device).expand(inp.shape[0])
    return st.pipe.transformer(inp, encoder_hidden_states=emb["prompt"], encoder_attention_mask=emb["mask"],
                               timestep=step_t, added_cond_kwargs=added, return_dict=False)[0]


def _call_sana(st: Stepper, inp: torch.Tensor, t: torch.Tensor, emb: _Expanded) -> torch.Tensor:
    tr = st.pipe.transformer
    step_t = t.expand(inp.shape[0]) * tr.config.timestep_scale
    return tr(inp.to(dtype=tr.dtype), encoder_hidden_states=emb["prompt"].to(dtype=tr.dtype),
              encoder_attention_mask=emb["mask"], timestep=step_t, return_dict=False,
              attention_kwargs=None)[0].float()


def _call_sd3(st: Stepper, inp: torch.Tensor, t: torch.Tensor, emb: _Expanded) -> torch.Tensor:
    return st.pipe.transformer(hidden_states=inp, timestep=t.expand(inp.shape[0]),
                               encoder_hidden_states=emb["prompt"], pooled_projections=emb["pooled"],
                               joint_attention_kwargs=None, return_dict=False)[0]


def _call_flux(st: Stepper, inp: torch.Tensor, t: torch.Tensor, emb: _Expanded) -> torch.Tensor:
    e, n = emb.ctx.embeds, emb.n
    guidance = e["guidance"].expand(n) if "guidance" in e else None
    return st.pipe.transformer(hidden_states=inp, timestep=t.expand(n).to(inp.dtype) / 1000, guidance=guidance,
                               pooled_projections=emb["pooled"], encoder_hidden_states=emb["prompt"],
                               txt_ids=e["text_ids"], img_ids=e["img_ids"], joint_attention_kwargs=None,
                               return_dict=False)[0]


# -- decoding: (images as the pipeline post-processes them, safety-checker flags or None) --------------------
def _decode_sd(st: Stepper, latents: torch.Tensor) -> tuple[Any, list[bool] | None]:
    pipe, vae = st.pipe, st.pipe.vae
    image = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
    image, nsfw = pipe.run_safety_checker(image, st.device, latents.dtype)
    denorm = [True] * image.shape[0] if nsfw is None else [not f for f in nsfw]
    return pipe.image_processor.postprocess(image, output_type="np", do_denormalize=denorm), nsfw


def _decode_plain(st: Stepper, latents: torch.Tensor) -> tuple[Any, list[bool] | None]:
    vae = st.pipe.vae
    image = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
    return st.pipe.image_processor.postprocess(image, output_type="np"), None


def _decode_shifted(st: Stepper, latents: torch.Tensor) -> tuple[Any, list[bool] | None]:
    vae = st.pipe.vae
    image = vae.decode((latents / vae.config.scaling_factor) + vae.config.shift_factor, return_dict=False)[0]
    return st.pipe.image_processor.postprocess(image, output_type="np"), None


def _decode_flux(st: Stepper, latents: torch.Tensor) -> tuple[Any, list[bool] | None]:
    h, w = st.gen.size()
    return _decode_shifted(st, st.pipe._unpack_latents(latents, h, w, st.pipe.vae_scale_factor))


def _decode_sdxl(st: Stepper, latents: torch.Tensor) -> tuple[Any, list[bool] | None]:
    pipe = st.pipe
    vae = pipe.vae
    upcast = vae.dtype == torch.float16 and vae.config.force_upcast
    if upcast:
        pipe.upcast_vae()
        latents = latents.to(next(iter(vae.post_quant_conv.parameters())).dtype)
    mean, std = getattr(vae.config, "latents_mean", None), getattr(vae.config, "latents_std", None)
    if mean is not None and std is not None:
        mean_t = torch.tensor(mean).view(1, 4, 1, 1).to(latents.device, latents.dtype)
        std_t = torch.tensor(std).view(1, 4, 1, 1).to(latents.device, latents.dtype)
        latents = latents * std_t / vae.config.scaling_factor + mean_t
    else:
        latents = latents / vae.config.scaling_factor
    image = vae.decode(latents, return_dict=False)[0]
    if upcast:
        vae.to(dtype=torch.float16)
    if getattr(pipe, "watermark", None) is not None:
        image = pipe.watermark.apply_watermark(image)
    return pipe.image_processor.postprocess(image, output_type="np"), None


# -- timestep shifts (extra set_timesteps arguments, as the pipelines compute them) --------------------------
def _shift(cfg: Any, seq: int, max_shift: float) -> float:
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    return calculate_shift(seq, cfg.get("base_image_seq_len", 256), cfg.get("max_image_seq_len", 4096),
                           cfg.get("base_shift", 0.5), cfg.get("max_shift", max_shift))


def _timesteps_flux(st: Stepper, sched: Any, total: int) -> dict[str, Any]:
    cfg = sched.config
    out: dict[str, Any] = {"mu": _shift(cfg, int(np.prod(st.shape[2:])) // 4, 1.15)}
    if not cfg.get("use_flow_sigmas", False):
        out["sigmas"] = np.linspace(1.0, 1 / total, total)
    return out


def _timesteps_sd3(st: Stepper, sched: Any, total: int) -> dict[str, Any]:
    cfg = sched.config
    if not cfg.get("use_dynamic_shifting", None):
        return {}
    _, _, h, w = st.shape
    ps = st.pipe.transformer.config.patch_size
    return {"mu": _shift(cfg, (h // ps) * (w // ps), 1.16)}


_DISCRETE = frozenset({"ddim", "ddpm", "euler"})
_FLOW = frozenset({"flow"})
_PIXART_KW = frozenset({"eta", "max_sequence_length", "clean_caption", "use_resolution_binning"})

FAMILY_STEPS: dict[str, FamilySteps] = {
    "sd": FamilySteps(_DISCRETE, frozenset({"eta", "guidance_rescale", "clip_skip"}), _encode_sd, _call_sd,
                      _decode_sd, guidance_embedded_unet=True),
    "sdxl": FamilySteps(_DISCRETE, frozenset({"eta", "guidance_rescale", "clip_skip"}), _encode_sdxl, _call_sdxl,
                        _decode_sdxl, guidance_embedded_unet=True),
    "pixart-alpha": FamilySteps(_DISCRETE, _PIXART_KW, _encode_t5, _call_pixart, _decode_plain, learned_sigma=True,
                                one_step_keeps_x0=True, resolution_condition=True),
    "pixart-sigma": FamilySteps(_DISCRETE, _PIXART_KW, _encode_t5, _call_pixart, _decode_plain, learned_sigma=True),
    "sd3": FamilySteps(_FLOW, frozenset({"max_sequence_length", "clip_skip"}), _encode_sd3, _call_sd3,
                       _decode_shifted, _timesteps_sd3, scales_noise=False, scales_input=False),
    "flux": FamilySteps(_FLOW, frozenset({"max_sequence_length"}), _encode_flux, _call_flux, _decode_flux,
                        _timesteps_flux, scales_noise=False, scales_input=False),
    "sana": FamilySteps(_FLOW, frozenset({"max_sequence_length", "clean_caption", "complex_human_instruction",
                                          "use_resolution_binning"}), _encode_sana, _call_sana, _decode_plain,
                        scales_noise=False, float32_latents=True, scales_input=False, learned_sigma=True),
}
"""Families that can step, each with its loop record."""

FAMILY_SCHEDULERS: dict[str, frozenset[str]] = {name: f.schedulers for name, f in FAMILY_STEPS.items()}
"""The scheduler kinds each family steps with."""

CALL_KWARGS: dict[str, frozenset[str]] = {name: f.call_kwargs for name, f in FAMILY_STEPS.items()}
"""``call_kwargs`` the stepping loop honours per family; any other one is refused (it would be ignored)."""


def stepping_problem(pipe: Any, family: Any, host: Host) -> str | None:
    """Why ``pipe`` (its ``family``, an ``eacps_diffusers.generator.Family`` or None in generator mode) cannot
    step as ``host`` calls it (None when it can): family, scheduler and call kwargs, checked up front."""
    if family is None:
        return (f"diffusers {type(pipe).__name__} cannot step: it draws its own noise (generator mode); "
                f"stepping families: {sorted(FAMILY_STEPS)}")
    steps = FAMILY_STEPS.get(family.name)
    if steps is None:
        return f"diffusers family {family.name!r} cannot step; stepping families: {sorted(FAMILY_STEPS)}"
    sched = type(pipe.scheduler).__name__
    kind = SCHEDULERS.get(sched)
    allowed = sorted(k for k, v in SCHEDULERS.items() if v.kind in steps.schedulers)
    if kind is None or kind.kind not in steps.schedulers:
        return (f"diffusers {family.name} cannot step with scheduler {sched!r}; "
                f"set generator.params.scheduler to one of {allowed}")
    if pipe.scheduler.config.get("stochastic_sampling", False):
        return "diffusers: stochastic_sampling flow matching cannot step (the pipeline draws its noise unseeded)"
    if steps.guidance_embedded_unet and getattr(pipe.unet.config, "time_cond_proj_dim", None) is not None:
        return "diffusers: a guidance-embedded UNet (time_cond_proj_dim, LCM) cannot step"
    if family.bins and host.call_kwarg("use_resolution_binning"):
        return (f"diffusers {family.name} cannot step with resolution binning (the image is resized after "
                "decoding); set call_kwargs.use_resolution_binning=false and a binned height/width")
    extra = sorted(set(host.params.call_kwargs) - steps.call_kwargs)
    if extra:
        return (f"diffusers {family.name} cannot step with call_kwargs {extra} (not honoured); "
                f"allowed: {sorted(steps.call_kwargs)}")
    return None


__all__ = ["CALL_KWARGS", "FAMILY_SCHEDULERS", "FAMILY_STEPS", "SCHEDULERS", "FamilySteps", "NoiseStreams",
           "SchedulerKind", "Stepper", "stepping_problem", "stream_seed"]
