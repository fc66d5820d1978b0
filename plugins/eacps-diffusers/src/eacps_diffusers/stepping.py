"""Stepping (``eacps.stepping``) for diffusers pipelines: start / advance / decode / marginal per family.

The denoising loop of each supported pipeline is written out here, step for step as the pipeline's own
``__call__`` does it (prompt encoding, CFG batch order ``[negative, positive]``, ``scale_model_input``, the
scheduler step, the VAE decode), so that ``start -> advance(T) -> decode`` gives the image ``generate`` gives.
Prompt embeddings live in a small per-condition cache and the configured schedulers in a per-length one, never
in the Trajectory.

Supported: SD1.5/2.x, SDXL and PixArt-α/Σ with DDIM, DDPM, Euler and Euler-ancestral; SD3, FLUX and Sana with
flow-matching Euler. Anything else (img2img, multistep/higher-order schedulers such as DPM-Solver++, UniPC,
Heun, PixArt's and Sana's resolution binning) is refused by ``stepping_problem`` before any compute.

Stochastic schedulers (Euler-ancestral, DDPM, DDIM with ``eta > 0``): the per-step noise of trajectory i comes
from its own CPU ``torch.Generator``, seeded from its recipe exactly as ``generate`` seeds it (the recipe's
seed, advanced past the initial-noise draw), so a seed-only path is the vanilla diffusers call. Since a
Trajectory carries no recipe, the generator remembers the stream seed of every state it returned
(``NoiseStreams``; a stream after k model calls is ``(seed, k)``); a branched state continues its parent's
stream, so a path's noise depends on its recipe alone and paths regenerate from their recipes (up to float
rounding, which is never turned into other noise).
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from eacps import Condition, Generated
from eacps.stepping import Trajectory

if TYPE_CHECKING:
    from eacps_diffusers.generator import DiffusersGenerator

SCHEDULERS: dict[str, str] = {
    "DDIMScheduler": "ddim",
    "DDPMScheduler": "ddpm",
    "EulerDiscreteScheduler": "euler",
    "EulerAncestralDiscreteScheduler": "euler",
    "FlowMatchEulerDiscreteScheduler": "flow",
}
"""Schedulers that can step from any step index (no multistep history), with their marginal kind."""

FAMILY_SCHEDULERS: dict[str, frozenset[str]] = {
    "sd": frozenset({"ddim", "ddpm", "euler"}),
    "sdxl": frozenset({"ddim", "ddpm", "euler"}),
    "pixart-alpha": frozenset({"ddim", "ddpm", "euler"}),
    "pixart-sigma": frozenset({"ddim", "ddpm", "euler"}),
    "sd3": frozenset({"flow"}),
    "flux": frozenset({"flow"}),
    "sana": frozenset({"flow"}),
}
"""Families that can step, and the scheduler kinds each supports."""

CALL_KWARGS: dict[str, frozenset[str]] = {
    "sd": frozenset({"eta", "guidance_rescale", "clip_skip"}),
    "sdxl": frozenset({"eta", "guidance_rescale", "clip_skip"}),
    "sd3": frozenset({"max_sequence_length", "clip_skip"}),
    "flux": frozenset({"max_sequence_length"}),
    "pixart-alpha": frozenset({"eta", "max_sequence_length", "clean_caption", "use_resolution_binning"}),
    "pixart-sigma": frozenset({"eta", "max_sequence_length", "clean_caption", "use_resolution_binning"}),
    "sana": frozenset({"max_sequence_length", "clean_caption", "complex_human_instruction", "use_resolution_binning"}),
}
"""``call_kwargs`` the stepping loop honours per family; any other one is refused (it would be ignored)."""


def stepping_problem(gen: DiffusersGenerator) -> str | None:
    """Why ``gen`` cannot step (None when it can): family, scheduler and call kwargs are checked up front."""
    pipe = gen.pipe
    fam = gen.family
    if fam is None:
        return (f"diffusers {type(pipe).__name__} cannot step: it draws its own noise (generator mode); "
                f"stepping families: {sorted(FAMILY_SCHEDULERS)}")
    if fam.name not in FAMILY_SCHEDULERS:
        return f"diffusers family {fam.name!r} cannot step; stepping families: {sorted(FAMILY_SCHEDULERS)}"
    sched = type(pipe.scheduler).__name__
    kind = SCHEDULERS.get(sched)
    allowed = sorted(k for k, v in SCHEDULERS.items() if v in FAMILY_SCHEDULERS[fam.name])
    if kind not in FAMILY_SCHEDULERS[fam.name]:
        return (f"diffusers {fam.name} cannot step with scheduler {sched!r}; "
                f"set generator.params.scheduler to one of {allowed}")
    if pipe.scheduler.config.get("stochastic_sampling", False):
        return "diffusers: stochastic_sampling flow matching cannot step (the pipeline draws its noise unseeded)"
    if fam.name in ("sd", "sdxl") and getattr(pipe.unet.config, "time_cond_proj_dim", None) is not None:
        return "diffusers: a guidance-embedded UNet (time_cond_proj_dim, LCM) cannot step"
    if fam.bins and gen._call_kwarg("use_resolution_binning"):
        return (f"diffusers {fam.name} cannot step with resolution binning (the image is resized after decoding); "
                "set call_kwargs.use_resolution_binning=false and a binned height/width")
    extra = sorted(set(gen.params.call_kwargs) - CALL_KWARGS[fam.name])
    if extra:
        allowed_kw = sorted(CALL_KWARGS[fam.name])
        return f"diffusers {fam.name} cannot step with call_kwargs {extra} (not honoured); allowed: {allowed_kw}"
    return None


def _state_hash(row: torch.Tensor) -> bytes:
    return hashlib.sha256(row.detach().to("cpu").contiguous().flatten().view(torch.uint8).numpy().tobytes()).digest()


class NoiseStreams:
    """Per-trajectory noise generators for stochastic schedulers.

    A trajectory's stream is ``Generator(seed)`` advanced past the initial-noise draw (as ``generate`` leaves it)
    and then by one draw per model call, so after ``k`` calls it is fully described by ``(seed, k)``. ``seed`` is
    the recipe's (``start``); ``advance`` remembers it under the hash of each state it returns, both of its
    latents and of its clean prediction. A branch move (the core's ``renoise``) changes the latents but keeps
    ``x0``, so a branched state is found by its ``x0`` and continues its parent's stream: a path's noise depends
    on its recipe alone, never on the float rounding of its state. The seeds are small (a large LRU); live
    generator states are kept for the most recent ``(seed, k)`` and otherwise replayed. A state found under
    neither hash (evicted) is seeded by the hash of its latents."""

    def __init__(self, init_shape: tuple[int, ...], init_dtype: torch.dtype, max_seeds: int = 1 << 16,
                 max_live: int = 1024) -> None:
        self.init_shape, self.init_dtype = init_shape, init_dtype
        self.max_seeds, self.max_live = max_seeds, max_live
        self._by_latents: OrderedDict[bytes, int] = OrderedDict()
        self._by_x0: OrderedDict[bytes, int] = OrderedDict()
        self._live: OrderedDict[tuple[int, int], torch.Tensor] = OrderedDict()

    def put(self, latents: torch.Tensor, x0: torch.Tensor | None, seeds: list[int], step: int,
            gens: list[torch.Generator] | None = None) -> None:
        for i, seed in enumerate(seeds):
            _remember(self._by_latents, _state_hash(latents[i]), seed, self.max_seeds)
            if x0 is not None:
                _remember(self._by_x0, _state_hash(x0[i]), seed, self.max_seeds)
            if gens is not None:
                _remember(self._live, (seed, step), gens[i].get_state(), self.max_live)

    def take(self, latents: torch.Tensor, x0: torch.Tensor | None,
             step: int) -> tuple[list[int], list[torch.Generator]]:
        """Each row's stream seed and its generator after ``step`` model calls."""
        seeds, gens = [], []
        draw = (1, *latents.shape[1:])
        for i in range(latents.shape[0]):
            h = _state_hash(latents[i])
            seed = self._by_latents.get(h)
            if seed is None and x0 is not None:
                seed = self._by_x0.get(_state_hash(x0[i]))  # a branched row: its parent's stream
            if seed is None:
                seed = int.from_bytes(h[:8], "big") % (2**63 - 1) or 1
            seeds.append(seed)
            gens.append(self._generator(seed, step, draw, latents.dtype))
        return seeds, gens

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


def _remember(table: OrderedDict, key: Any, value: Any, limit: int) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)


@dataclass
class _Context:
    """What every model call of one condition at one schedule length needs (batch size 1, expanded per call)."""

    kind: str
    cfg: bool
    guidance: float
    embeds: dict[str, torch.Tensor]
    extra: dict[str, Any]
    stochastic: bool


def _set_index(sched: Any, i: int) -> None:
    if hasattr(sched, "_step_index"):
        sched._step_index = i  # diffusers schedulers keep the step index themselves: set it for this call


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


class Stepper:
    """start / advance / decode / marginal for one ``DiffusersGenerator`` (its pipeline and params)."""

    def __init__(self, gen: DiffusersGenerator, max_contexts: int = 8) -> None:
        self.gen = gen
        self.max_contexts = max_contexts
        self._contexts: OrderedDict[tuple[str, str | None], _Context] = OrderedDict()
        self._schedulers: dict[int, Any] = {}
        self.streams = NoiseStreams(gen.noise_shape(Condition(id="_")), gen.noise_dtype)

    @property
    def family(self) -> str:
        return self.gen.family.name  # type: ignore[union-attr]

    @property
    def device(self) -> torch.device:
        return self.gen.pipe._execution_device

    # -- context ---------------------------------------------------------------------------------
    def context(self, condition: Condition) -> _Context:
        kw = self.gen._kwargs(condition, self.gen.default_steps)
        key = (kw["prompt"], kw.get("negative_prompt"))
        if (ctx := self._contexts.get(key)) is None:
            ctx = self._build(kw)
            self._contexts[key] = ctx
            while len(self._contexts) > self.max_contexts:
                self._contexts.popitem(last=False)
        self._contexts.move_to_end(key)
        return ctx

    def _build(self, kw: dict[str, Any]) -> _Context:
        pipe = self.gen.pipe
        guidance = float(kw.get("guidance_scale", self.gen._call_default("guidance_scale") or 1.0))
        sched = pipe.scheduler
        kind = SCHEDULERS[type(sched).__name__]
        with torch.no_grad():
            embeds, cfg = getattr(self, f"_encode_{self.family.split('-')[0]}")(kw, guidance)
        eta = float(kw.get("eta", 0.0))
        stochastic = (type(sched).__name__ in ("EulerAncestralDiscreteScheduler", "DDPMScheduler")
                      or (kind == "ddim" and eta > 0))
        extra = {"eta": eta} if kind == "ddim" else {}
        extra["guidance_rescale"] = float(kw.get("guidance_rescale", 0.0))
        return _Context(kind, cfg, guidance, embeds, extra, stochastic)

    def scheduler(self, total: int) -> Any:
        """A copy of the pipeline's scheduler with the ``total``-step schedule the pipeline would set."""
        if (sched := self._schedulers.get(total)) is None:
            pipe = self.gen.pipe
            sched = type(pipe.scheduler).from_config(pipe.scheduler.config)
            self._set_timesteps(sched, total)
            self._schedulers[total] = sched
        return sched

    def _set_timesteps(self, sched: Any, total: int) -> None:
        from diffusers.pipelines.flux.pipeline_flux import calculate_shift, retrieve_timesteps

        pipe, cfg = self.gen.pipe, sched.config
        kwargs: dict[str, Any] = {}
        if self.family == "flux":
            seq = int(np.prod(self.gen.noise_shape(Condition(id="_"))[2:])) // 4
            if not cfg.get("use_flow_sigmas", False):
                kwargs["sigmas"] = np.linspace(1.0, 1 / total, total)
            kwargs["mu"] = calculate_shift(seq, cfg.get("base_image_seq_len", 256), cfg.get("max_image_seq_len", 4096),
                                           cfg.get("base_shift", 0.5), cfg.get("max_shift", 1.15))
        elif self.family == "sd3" and cfg.get("use_dynamic_shifting", None):
            _, _, h, w = self.gen.noise_shape(Condition(id="_"))
            ps = pipe.transformer.config.patch_size
            kwargs["mu"] = calculate_shift((h // ps) * (w // ps), cfg.get("base_image_seq_len", 256),
                                           cfg.get("max_image_seq_len", 4096), cfg.get("base_shift", 0.5),
                                           cfg.get("max_shift", 1.16))
        retrieve_timesteps(sched, total, self.device, **kwargs)

    # per-family prompt encoding: embeddings at batch size 1 (the pipeline encodes once, then repeats)
    def _encode_sd(self, kw: dict[str, Any], guidance: float) -> tuple[dict[str, torch.Tensor], bool]:
        pipe = self.gen.pipe
        cfg = guidance > 1
        pe, ne = pipe.encode_prompt(kw["prompt"], self.device, 1, cfg, kw.get("negative_prompt"),
                                    clip_skip=kw.get("clip_skip"))
        return {"prompt": pe, "negative": ne} if cfg else {"prompt": pe}, cfg

    def _encode_sdxl(self, kw: dict[str, Any], guidance: float) -> tuple[dict[str, torch.Tensor], bool]:
        pipe = self.gen.pipe
        cfg = guidance > 1
        pe, ne, pool, npool = pipe.encode_prompt(prompt=kw["prompt"], device=self.device, num_images_per_prompt=1,
                                                 do_classifier_free_guidance=cfg,
                                                 negative_prompt=kw.get("negative_prompt"),
                                                 clip_skip=kw.get("clip_skip"))
        h, w = kw["height"], kw["width"]
        proj = int(pool.shape[-1]) if pipe.text_encoder_2 is None else pipe.text_encoder_2.config.projection_dim
        ids = pipe._get_add_time_ids((h, w), (0, 0), (h, w), dtype=pe.dtype,
                                     text_encoder_projection_dim=proj).to(self.device)
        out = {"prompt": pe, "pooled": pool, "time_ids": ids}
        if cfg:
            out.update(negative=ne, negative_pooled=npool)
        return out, cfg

    def _encode_sd3(self, kw: dict[str, Any], guidance: float) -> tuple[dict[str, torch.Tensor], bool]:
        pipe = self.gen.pipe
        cfg = guidance > 1
        pe, ne, pool, npool = pipe.encode_prompt(
            prompt=kw["prompt"], prompt_2=None, prompt_3=None, negative_prompt=kw.get("negative_prompt"),
            do_classifier_free_guidance=cfg, device=self.device, clip_skip=kw.get("clip_skip"),
            num_images_per_prompt=1, max_sequence_length=kw.get("max_sequence_length", 256))
        out = {"prompt": pe, "pooled": pool}
        if cfg:
            out.update(negative=ne, negative_pooled=npool)
        return out, cfg

    def _encode_pixart(self, kw: dict[str, Any], guidance: float) -> tuple[dict[str, torch.Tensor], bool]:
        """PixArt-α/Σ and Sana (T5/Gemma embeddings with attention masks; Sana adds its instruction)."""
        pipe, gen = self.gen.pipe, self.gen
        cfg = guidance > 1
        extra = {}
        if self.family == "sana":
            extra["complex_human_instruction"] = kw.get("complex_human_instruction",
                                                        gen._call_default("complex_human_instruction"))
        pe, pm, ne, nm = pipe.encode_prompt(
            kw["prompt"], cfg, negative_prompt=kw.get("negative_prompt", ""), num_images_per_prompt=1,
            device=self.device, clean_caption=kw.get("clean_caption", gen._call_default("clean_caption")),
            max_sequence_length=kw.get("max_sequence_length", gen._call_default("max_sequence_length")), **extra)
        out = {"prompt": pe, "mask": pm}
        if cfg:
            out.update(negative=ne, negative_mask=nm)
        if self.family == "pixart-alpha" and pipe.transformer.config.sample_size == 128:
            h, w = kw["height"], kw["width"]
            out["resolution"] = torch.tensor([[h, w]]).to(dtype=pe.dtype, device=self.device)
            out["aspect_ratio"] = torch.tensor([[float(h / w)]]).to(dtype=pe.dtype, device=self.device)
        return out, cfg

    _encode_sana = _encode_pixart

    def _encode_flux(self, kw: dict[str, Any], guidance: float) -> tuple[dict[str, torch.Tensor], bool]:
        pipe = self.gen.pipe
        pe, pool, text_ids = pipe.encode_prompt(prompt=kw["prompt"], prompt_2=None, device=self.device,
                                                num_images_per_prompt=1,
                                                max_sequence_length=kw.get("max_sequence_length", 512))
        _, _, h, w = self.gen.noise_shape(Condition(id="_"))
        img_ids = pipe._prepare_latent_image_ids(1, h // 2, w // 2, self.device, pe.dtype)
        out = {"prompt": pe, "pooled": pool, "text_ids": text_ids, "img_ids": img_ids}
        if pipe.transformer.config.guidance_embeds:
            out["guidance"] = torch.full([1], guidance, device=self.device, dtype=torch.float32)
        return out, False  # FLUX.1 is guidance-distilled: one pass per step

    # -- the stepping methods ----------------------------------------------------------------------
    def start(self, noise: torch.Tensor, condition: Condition, total: int, seeds: list[int]) -> Trajectory:
        """``noise``: the recipes' initial noise as the pipeline's ``latents=``; scaled as ``prepare_latents`` does.
        ``seeds``: the recipes' noise-stream seeds (used by stochastic schedulers)."""
        ctx = self.context(condition)
        latents = noise.to(self.device)
        if self.family in ("sd", "sdxl", "pixart-alpha", "pixart-sigma"):
            latents = latents * self.scheduler(total).init_noise_sigma
        else:  # SD3/FLUX draw in the embeddings' dtype, Sana in float32
            latents = latents.to(dtype=torch.float32 if self.family == "sana" else ctx.embeds["prompt"].dtype)
        if ctx.stochastic:
            self.streams.put(latents, None, seeds, 0)
        return Trajectory(latents, None, 0, total)

    @torch.no_grad()
    def advance(self, traj: Trajectory, condition: Condition, until: int) -> Trajectory:
        if not traj.step <= until <= traj.total:
            raise ValueError(f"advance from step {traj.step} to {until} is outside 0..{traj.total}")
        ctx = self.context(condition)
        # a shallow copy: the step index this call sets is its own (a timed-out call may still be running)
        sched, x, x0 = copy.copy(self.scheduler(traj.total)), traj.latents, traj.x0
        seeds, gens = self.streams.take(x, x0, traj.step) if ctx.stochastic else ([], None)
        step_kwargs: dict[str, Any] = {"generator": gens} if gens is not None else {}
        emb = _Expanded(ctx, x.shape[0])
        if ctx.kind == "ddim":
            step_kwargs["eta"] = ctx.extra["eta"]
        for i in range(traj.step, until):
            t = sched.timesteps[i]
            pred = self._model(x, t, i, emb, sched)
            _set_index(sched, i)
            out = sched.step(pred, t, x, **step_kwargs, return_dict=True)
            if ctx.kind != "flow":
                x0 = out.pred_original_sample
            elif i == until - 1:  # only the last call's is kept; x_t = (1 - s) x0 + s eps, the model predicts eps - x0
                x0 = (x.float() - float(sched.sigmas[i]) * pred.float()).to(x.dtype)
            x = out.prev_sample
        if self.family == "pixart-alpha" and traj.total == 1:
            x = out.pred_original_sample  # PixArt-α's one-step call keeps the clean prediction
        if gens is not None:
            self.streams.put(x, x0, seeds, until, gens)
        return Trajectory(x, x0, until, traj.total)

    def _model(self, x: torch.Tensor, t: torch.Tensor, i: int, emb: _Expanded, sched: Any) -> torch.Tensor:
        """One model call for the batch ``x`` at timestep ``t`` (index ``i``), CFG as the pipeline does it."""
        from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg

        ctx = emb.ctx
        inp = torch.cat([x] * 2) if ctx.cfg else x
        if self.family in ("sd", "sdxl") or self.family.startswith("pixart"):
            _set_index(sched, i)
            inp = sched.scale_model_input(inp, t)
        pred = getattr(self, f"_call_{self.family.split('-')[0]}")(inp, t, emb)
        if ctx.cfg:
            uncond, text = pred.chunk(2)
            pred = uncond + ctx.guidance * (text - uncond)
            if ctx.extra["guidance_rescale"] > 0:
                pred = rescale_noise_cfg(pred, text, guidance_rescale=ctx.extra["guidance_rescale"])
        den = getattr(self.gen.pipe, "transformer", None)
        if self.family not in ("sd3", "flux") and den is not None and den.config.out_channels // 2 == x.shape[1]:
            pred = pred.chunk(2, dim=1)[0]  # learned sigma (PixArt, Sana): the pipeline keeps the noise half
        return pred

    # per-family model calls on the (CFG-doubled) input, as each pipeline's loop makes them
    def _call_sd(self, inp: torch.Tensor, t: torch.Tensor, emb: _Expanded) -> torch.Tensor:
        added = {"text_embeds": emb["pooled"], "time_ids": emb["time_ids"]} if self.family == "sdxl" else None
        return self.gen.pipe.unet(inp, t, encoder_hidden_states=emb["prompt"], timestep_cond=None,
                                  cross_attention_kwargs=None, added_cond_kwargs=added, return_dict=False)[0]

    _call_sdxl = _call_sd

    def _call_pixart(self, inp: torch.Tensor, t: torch.Tensor, emb: _Expanded) -> torch.Tensor:
        added: dict[str, Any] = {"resolution": None, "aspect_ratio": None}
        if "resolution" in emb.ctx.embeds:  # PixArt-α at sample size 128
            added = {k: emb[k] for k in ("resolution", "aspect_ratio")}
        step_t = (t[None] if t.dim() == 0 else t).to(inp.device).expand(inp.shape[0])
        return self.gen.pipe.transformer(inp, encoder_hidden_states=emb["prompt"],
                                         encoder_attention_mask=emb["mask"], timestep=step_t,
                                         added_cond_kwargs=added, return_dict=False)[0]

    def _call_sana(self, inp: torch.Tensor, t: torch.Tensor, emb: _Expanded) -> torch.Tensor:
        tr = self.gen.pipe.transformer
        step_t = t.expand(inp.shape[0]) * tr.config.timestep_scale
        return tr(inp.to(dtype=tr.dtype), encoder_hidden_states=emb["prompt"].to(dtype=tr.dtype),
                  encoder_attention_mask=emb["mask"], timestep=step_t, return_dict=False,
                  attention_kwargs=None)[0].float()

    def _call_sd3(self, inp: torch.Tensor, t: torch.Tensor, emb: _Expanded) -> torch.Tensor:
        return self.gen.pipe.transformer(hidden_states=inp, timestep=t.expand(inp.shape[0]),
                                         encoder_hidden_states=emb["prompt"], pooled_projections=emb["pooled"],
                                         joint_attention_kwargs=None, return_dict=False)[0]

    def _call_flux(self, inp: torch.Tensor, t: torch.Tensor, emb: _Expanded) -> torch.Tensor:
        e, n = emb.ctx.embeds, emb.n
        guidance = e["guidance"].expand(n) if "guidance" in e else None
        return self.gen.pipe.transformer(hidden_states=inp, timestep=t.expand(n).to(inp.dtype) / 1000,
                                         guidance=guidance, pooled_projections=emb["pooled"],
                                         encoder_hidden_states=emb["prompt"], txt_ids=e["text_ids"],
                                         img_ids=e["img_ids"], joint_attention_kwargs=None, return_dict=False)[0]

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, condition: Condition) -> list[Generated]:
        """Latents -> images as the pipeline decodes them, judged like ``generate``'s (the safety checker here;
        NaN/inf and black by the engine's image filter)."""
        pipe = self.gen.pipe
        vae = pipe.vae
        h, w = self.gen.size()
        nsfw = None
        latents = latents.to(self.device, vae.dtype)  # a clean prediction may be float32 (Euler upcasts)
        if self.family == "flux":
            latents = pipe._unpack_latents(latents, h, w, pipe.vae_scale_factor)
        if self.family.startswith("pixart") or self.family == "sana":
            image = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
            image = pipe.image_processor.postprocess(image, output_type="np")
        elif self.family in ("sd3", "flux"):
            image = vae.decode((latents / vae.config.scaling_factor) + vae.config.shift_factor, return_dict=False)[0]
            image = pipe.image_processor.postprocess(image, output_type="np")
        elif self.family == "sdxl":
            image = pipe.image_processor.postprocess(self._decode_sdxl(latents), output_type="np")
        else:
            image = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
            image, nsfw = pipe.run_safety_checker(image, self.device, latents.dtype)
            denorm = [True] * image.shape[0] if nsfw is None else [not f for f in nsfw]
            image = pipe.image_processor.postprocess(image, output_type="np", do_denormalize=denorm)
        images = np.asarray(image, dtype=np.float32)
        flags = nsfw or [False] * images.shape[0]
        return [self.gen._judge(images[i], bool(flags[i])) for i in range(images.shape[0])]

    def _decode_sdxl(self, latents: torch.Tensor) -> torch.Tensor:
        pipe = self.gen.pipe
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
        return image

    def marginal(self, traj: Trajectory) -> tuple[float, float]:
        """``x_k = a·x0 + b·eps`` after ``k = traj.step`` model calls, as the scheduler wrote ``x_k``."""
        if not 1 <= traj.step < traj.total:
            raise ValueError(f"no branch at step {traj.step} of {traj.total}: it needs 1 <= step < {traj.total}")
        sched, k = self.scheduler(traj.total), traj.step
        kind = SCHEDULERS[type(sched).__name__]
        if kind in ("ddim", "ddpm"):
            t = int(sched.timesteps[k - 1])
            if kind == "ddim":
                prev = t - sched.config.num_train_timesteps // sched.num_inference_steps
                abar = float(sched.alphas_cumprod[prev]) if prev >= 0 else float(sched.final_alpha_cumprod)
            else:
                prev = int(sched.previous_timestep(t))
                abar = float(sched.alphas_cumprod[prev]) if prev >= 0 else 1.0
            return math.sqrt(abar), math.sqrt(1.0 - abar)
        sigma = float(sched.sigmas[k])
        return (1.0, sigma) if kind == "euler" else (1.0 - sigma, sigma)


__all__ = ["CALL_KWARGS", "FAMILY_SCHEDULERS", "SCHEDULERS", "NoiseStreams", "Stepper", "stepping_problem"]
