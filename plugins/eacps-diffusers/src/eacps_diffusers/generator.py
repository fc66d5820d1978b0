"""``DiffusersGenerator``: any diffusers text-to-image / edit / img2img pipeline as an eacps generator.

Noise modes
-----------
* ``latents`` (known text-to-image families, table ``FAMILIES``): the generator computes the initial-noise
  shape from the pipeline's own components, materializes each recipe in that shape (batch dim 1) and
  passes ``latents=`` (packed exactly as the pipeline packs, for FLUX-like families). A seed-only recipe
  draws the same numbers as ``pipe(..., generator=torch.Generator("cpu").manual_seed(seed))``. Each
  candidate also gets its own CPU generator, seeded and advanced past the initial draw exactly as in
  the vanilla call, so stochastic schedulers (ancestral, DDPM, eta > 0) reproduce too.
* ``generator`` (img2img, inpaint, and any pipeline not in ``FAMILIES``): ``latents=`` is not the initial
  noise, so the pipeline draws it from ``generator=[one CPU generator per candidate]``; only seed-only
  recipes are accepted, and noise-space recipes are refused before any compute.
"""

from __future__ import annotations

import functools
import inspect
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from eacps import Condition, Generated, Generator, Params, Recipe
from eacps.config import ConfigError
from eacps.engine.checkpoints import NotCachedError, not_cached
from eacps.errors import one_line
from eacps.stepping import route_paths
from eacps.trajectory import Trajectory
from eacps_diffusers.stepping import Stepper, stepping_problem, stream_seed

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class ModelLoadError(RuntimeError):
    """A pipeline could not be loaded; the message is one line and says what to do."""


class ModelNotCached(ModelLoadError, NotCachedError):
    """A hub model that is not in the cache while downloads are off: a config error naming ``params.model``,
    with the exact ``hf download`` line (``eacps.engine.checkpoints.not_cached``), never cut."""


class DiffusersParams(Params):
    model: str = Field(..., description="hub id or local folder for DiffusionPipeline.from_pretrained")
    pipeline_class: str | None = Field(
        None, description="explicit diffusers pipeline class name, e.g. 'StableDiffusionXLImg2ImgPipeline'"
    )
    revision: str | None = Field(None, description="hub revision (branch, tag or commit)")
    variant: str | None = Field(None, description="weights variant, e.g. 'fp16'")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="auto: float32 on CPU, bfloat16 on CUDA when supported else float16"
    )
    device: str | None = Field(None, description="torch device; default cuda, then mps, then cpu")
    cpu_offload: bool = Field(False, description="enable_model_cpu_offload() instead of moving to device")
    scheduler: str | None = Field(None, description="diffusers scheduler class name to use instead of the default")
    scheduler_kwargs: dict[str, Any] = Field(default_factory=dict, description="config overrides for the scheduler")
    steps: int | None = Field(None, ge=1, description="num_inference_steps; default: the pipeline's own default")
    guidance_scale: float | None = Field(None, description="default: the pipeline's own default")
    height: int | None = Field(None, ge=8)
    width: int | None = Field(None, ge=8)
    negative_prompt: str | None = Field(None, description="used when the condition has none")
    call_kwargs: dict[str, Any] = Field(default_factory=dict, description="extra keyword arguments for every call")
    image_input: Literal["auto", "prior", "reference", "none"] = Field(
        "auto", description="which condition image is passed as image=: auto = reference, else prior"
    )
    local_files_only: bool = Field(True, description="never reach the hub unless set to false (safe default)")
    trust_remote_code: bool = Field(False, description="allow custom pipeline/component code from the repo")
    allow_pickle_weights: bool = Field(False, description="accept .bin/.ckpt (pickle) weights; default safetensors")
    cache_dir: str | None = None
    components: dict[str, Literal["none"] | None] = Field(
        default_factory=dict,
        description="components loaded as None, e.g. {text_encoder_3 = 'none', tokenizer_3 = 'none'}: SD3 without T5",
    )
    max_batch_size: int = Field(8, ge=1, description="candidates per pipeline call (the engine halves a call that "
                                "runs out of memory)")
    noise_mode: Literal["auto", "latents", "generator"] = Field(
        "auto", description="auto: latents= for known text-to-image families, per-candidate generators otherwise"
    )
    black_threshold: float = Field(1.0 / 255.0, ge=0, description="images whose max is at or below this are FILTERED")


# -- families ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """How a text-to-image pipeline draws its initial noise (mirrors its ``prepare_latents``)."""

    name: str
    channels: Callable[[Any], int]
    packed: bool = False  # FLUX-like: draw (B, C, 2*(H//(2 vsf)), ...) then ``_pack_latents``
    bins: dict[int, str] = field(default_factory=dict)  # transformer sample_size -> ASPECT_RATIO_*_BIN
    float32_noise: bool = False  # draws in float32 whatever the model dtype (Sana)


def _unet_ch(p: Any) -> int:
    return int(p.unet.config.in_channels)


def _tr_ch(p: Any) -> int:
    return int(p.transformer.config.in_channels)


def _flux_ch(p: Any) -> int:
    return int(p.transformer.config.in_channels) // 4


_PIXART_A = {128: "ASPECT_RATIO_1024_BIN", 64: "ASPECT_RATIO_512_BIN", 32: "ASPECT_RATIO_256_BIN"}
_PIXART_S = {256: "ASPECT_RATIO_2048_BIN", **_PIXART_A}
_SANA = {
    128: "ASPECT_RATIO_4096_BIN",
    64: "ASPECT_RATIO_2048_BIN",
    32: "ASPECT_RATIO_1024_BIN",
    16: "ASPECT_RATIO_512_BIN",
}

FAMILIES: dict[str, Family] = {
    "StableDiffusionPipeline": Family("sd", _unet_ch),
    "StableDiffusionXLPipeline": Family("sdxl", _unet_ch),
    "StableDiffusion3Pipeline": Family("sd3", _tr_ch),
    "FluxPipeline": Family("flux", _flux_ch, packed=True),
    "PixArtAlphaPipeline": Family("pixart-alpha", _tr_ch, bins=_PIXART_A),
    "PixArtSigmaPipeline": Family("pixart-sigma", _tr_ch, bins=_PIXART_S),
    "SanaPipeline": Family("sana", _tr_ch, bins=_SANA, float32_noise=True),
}
"""Pipelines whose ``latents=`` is the initial noise, with the rule for its shape. Others: generator mode."""


def _default_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


@functools.cache
def _floors_strength(cls: type) -> bool:
    """Whether a pipeline class's ``get_timesteps`` runs ``int(steps × strength)`` steps (SD/SDXL img2img,
    inpaint); the flow-matching img2img pipelines compute ``t_start`` so that they round up instead."""
    try:
        return "int(num_inference_steps * strength)" in inspect.getsource(cls.get_timesteps)
    except (AttributeError, OSError, TypeError):
        return False


class DiffusersGenerator(Generator[DiffusersParams]):
    """Runs a diffusers pipeline; owns the seed -> noise mapping so winning seeds work in plain diffusers."""

    name = "diffusers"
    Params = DiffusersParams
    #: both depend on the loaded pipeline: ``stepping_problem`` and ``noise_recipes_problem`` decide (and load it)
    supports_stepping = True
    supports_noise_recipes = True

    def __init__(self, params: DiffusersParams | None = None, *, pipe: Any = None, **kwargs: Any) -> None:
        if params is None:
            params = DiffusersParams(**kwargs)
        elif kwargs:
            raise TypeError("pass either params or keyword parameters, not both")
        super().__init__(params)
        self._pipe = pipe
        self._in_memory = pipe is not None
        self._stepper: Stepper | None = None
        self.black_level = float(params.black_threshold)  # images at or below it are FILTERED as all black
        if pipe is not None:
            if params.components:
                raise ValueError("components: applies when loading a model; build the in-memory pipeline without them")
            self._prepare(pipe, move=params.device is not None or params.cpu_offload)

    @classmethod
    def from_pipe(cls, pipe: Any, **params: Any) -> DiffusersGenerator:
        """Wrap an already built pipeline (notebooks, tests). ``model`` labels it in the fingerprint.

        Its torch modules are put in eval mode (here and before every call): dropout would break exact regeneration.
        """
        params.setdefault("model", f"in-memory:{type(pipe).__name__}:{id(pipe):x}")
        if "dtype" not in params:
            dt = _module_dtype(pipe)
            params["dtype"] = next((k for k, v in DTYPES.items() if v == dt), "float32")
        return cls(DiffusersParams(**params), pipe=pipe)

    # -- loading ---------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return torch.device(self.params.device or _default_device())

    @property
    def torch_dtype(self) -> torch.dtype:
        if self.params.dtype != "auto":
            return DTYPES[self.params.dtype]
        dev = self.device
        if dev.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if dev.type == "mps":
            return torch.float16
        return torch.float32

    def load(self) -> None:
        """Load the pipeline now (the engine calls this before a run: load errors are config errors), then
        check the settings that need it (steps x strength)."""
        _ = self.pipe
        if (problem := self.steps_problem(self.default_steps)) is not None:
            raise ConfigError(f"{problem[0]}: {problem[1]}")
        if self._stepper is None and self.stepping_problem() is None:
            self._stepper = Stepper(self, self.family.name)  # type: ignore[union-attr]

    @property
    def pipe(self) -> Any:
        """The pipeline, loaded on first use."""
        if self._pipe is None:
            self._pipe = self._load()
            self._prepare(self._pipe, move=True)
        return self._pipe

    def _pipeline_cls(self) -> type:
        import diffusers

        name = self.params.pipeline_class
        if name is None:
            return diffusers.DiffusionPipeline
        cls = getattr(diffusers, name, None)
        if not (isinstance(cls, type) and issubclass(cls, diffusers.DiffusionPipeline)):
            raise ModelLoadError(f"unknown diffusers pipeline class {name!r}")
        return cls

    def _load(self) -> Any:
        p = self.params
        if p.local_files_only and (why := not_cached(p.model, "model_index.json", revision=p.revision,
                                                     cache_dir=p.cache_dir)) is not None:
            raise ModelNotCached(f"params.model: {why}")
        cls = self._pipeline_cls()
        kwargs: dict[str, Any] = {
            "dtype": self.torch_dtype,
            "local_files_only": p.local_files_only,
            "trust_remote_code": p.trust_remote_code,
            "use_safetensors": None if p.allow_pickle_weights else True,
        }
        for k in ("revision", "variant", "cache_dir"):
            if getattr(p, k) is not None:
                kwargs[k] = getattr(p, k)
        kwargs.update(dict.fromkeys(p.components))  # every override loads the pipeline without that component
        from diffusers.utils import logging as dlog

        verbosity = dlog.get_verbosity()
        bars = dlog.is_progress_bar_enabled() if hasattr(dlog, "is_progress_bar_enabled") else True
        dlog.set_verbosity(dlog.CRITICAL)  # a refused model is one line from us, not diffusers' own log lines
        dlog.disable_progress_bar()
        try:
            pipe = cls.from_pretrained(p.model, **kwargs)
        except Exception as exc:
            cause = one_line(exc, limit=sys.maxsize)  # uncut: whoever prints it cuts once
            hint = _load_hint(exc, p)
            raise ModelLoadError(f"model {_short(p.model)!r}{hint}: {cause}") from None
        finally:
            dlog.set_verbosity(verbosity)
            if bars:
                dlog.enable_progress_bar()
        unknown = sorted(set(p.components) - set(pipe.components))
        if unknown:
            raise ModelLoadError(
                f"components: {unknown} are not components of {type(pipe).__name__}; known: {sorted(pipe.components)}"
            )
        return pipe

    def _prepare(self, pipe: Any, *, move: bool) -> None:
        import diffusers

        p = self.params
        if p.scheduler is not None:
            cls = getattr(diffusers, p.scheduler, None)
            if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
                raise ValueError(f"unknown diffusers scheduler {p.scheduler!r}")
            pipe.scheduler = cls.from_config(pipe.scheduler.config, **p.scheduler_kwargs)
        elif p.scheduler_kwargs:
            pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, **p.scheduler_kwargs)
        if move:
            if p.cpu_offload:
                pipe.enable_model_cpu_offload(device=self.device)
            else:
                pipe.to(self.device)
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)
        _eval_mode(pipe)
        self._signature = inspect.signature(type(pipe).__call__).parameters

    # -- families and noise ------------------------------------------------------------------------
    @property
    def family(self) -> Family | None:
        """The known text-to-image family in latents mode, or None (generator mode)."""
        if self.params.noise_mode == "generator":
            return None
        fam = FAMILIES.get(type(self.pipe).__name__)
        if fam is None and self.params.noise_mode == "latents":
            raise ValueError(
                f"noise_mode='latents' is not supported for {type(self.pipe).__name__}; known: {sorted(FAMILIES)}"
            )
        return fam

    # -- stepping (eacps.stepping; the loops are in eacps_diffusers.stepping) ---------------------------
    def stepping_problem(self) -> str | None:
        """Why this pipeline cannot step (family, scheduler, call kwargs), or None; see ``stepping.SCHEDULERS``."""
        return stepping_problem(self.pipe, self.family, self)

    @property
    def stepper(self) -> Stepper:
        """The stepping loop of this pipeline's family and scheduler (built by ``load``, or on first use)."""
        if self._stepper is None:
            if (problem := self.stepping_problem()) is not None:
                raise ValueError(problem)
            self._stepper = Stepper(self, self.family.name)  # type: ignore[union-attr]
        return self._stepper

    def start(self, recipes: Sequence[Recipe], condition: Condition, *, steps: int | None = None) -> Trajectory:
        recipes = list(recipes)
        self.check([r.root for r in recipes])
        total = int(steps or self.default_steps)
        stepper = self.stepper
        _eval_mode(self.pipe)
        noise = self.pipeline_latents(self.noises(recipes, condition))
        return stepper.start(noise, condition, total, recipes)

    def advance(self, traj: Trajectory, condition: Condition, until: int) -> Trajectory:
        """At most ``max_batch_size`` trajectories per model call (out of memory: the engine splits the call)."""
        stepper = self.stepper
        parts = self._in_chunks(len(traj), lambda i, j: [stepper.advance(traj if (i, j) == (0, len(traj)) else
                                                                         traj.select(range(i, j)), condition, until)])
        return parts[0] if len(parts) == 1 else Trajectory.concat(parts)

    def decode(self, latents: torch.Tensor, condition: Condition) -> list[Generated]:
        stepper = self.stepper
        return self._in_chunks(int(latents.shape[0]), lambda i, j: stepper.decode(latents[i:j], condition))

    def _in_chunks(self, n: int, run: Callable[[int, int], list[Any]]) -> list[Any]:
        """``run(i, j)`` over rows ``0..n`` in chunks of ``max_batch_size``. Out-of-memory errors propagate: the
        engine's batch computer is the one place that splits a call and remembers the size that fits."""
        out: list[Any] = []
        size = self.params.max_batch_size
        for i in range(0, n, size):
            out.extend(run(i, min(n, i + size)))
        return out

    def marginal(self, traj: Trajectory) -> tuple[float, float]:
        return self.stepper.marginal(traj)

    def noise_recipes_problem(self) -> str | None:
        """Noise-space recipes need ``latents=`` to be the initial noise (known text-to-image families)."""
        if self.family is not None:
            return None
        return f"{type(self.pipe).__name__} accepts seed-only recipes (its latents are not the initial noise)"

    def call_kwarg(self, name: str) -> Any:
        """The value a call passes for ``name``: ``call_kwargs``, else the pipeline's default."""
        return self.params.call_kwargs.get(name, self.call_default(name))

    def call_default(self, name: str) -> Any:
        """The pipeline's own default for call argument ``name`` (None when it has none)."""
        par = self._signature.get(name)
        return None if par is None or par.default is inspect.Parameter.empty else par.default

    @property
    def default_steps(self) -> int:
        return int(self.params.steps or self.call_default("num_inference_steps") or 50)

    def steps_problem(self, steps: int) -> tuple[str, str] | None:
        """(field, why) when a call at ``steps`` would run no denoising step, else None. SD/SDXL-style img2img
        and inpaint pipelines run ``int(steps × strength)`` steps (their ``get_timesteps`` floors), and at zero
        fail deep inside the VAE; flow-matching ones round up, and ``denoising_start`` replaces strength."""
        if "strength" not in self._signature or self.call_kwarg("denoising_start") is not None:
            return None
        strength = self.call_kwarg("strength")
        if isinstance(strength, bool) or not isinstance(strength, int | float) or not _floors_strength(type(self.pipe)):
            return None
        name = type(self.pipe).__name__
        if strength <= 0:
            return "params.call_kwargs.strength", f"{name} runs no denoising step at strength {strength}; use (0, 1]"
        if int(steps * strength) >= 1:
            return None
        return "params.steps", (f"{name} runs int(steps x strength) = int({steps} x {strength}) = 0 denoising "
                                f"steps; use steps >= {math.ceil(1 / strength)} or a larger call_kwargs.strength")

    def size(self) -> tuple[int, int]:
        """(height, width) passed to every call: the params, else the pipeline's own default."""
        pipe, p = self.pipe, self.params
        vsf = int(getattr(pipe, "vae_scale_factor", 8))
        default = self.call_default("height"), self.call_default("width")
        if default[0] is None or default[1] is None:
            ss = getattr(pipe, "default_sample_size", None)
            if ss is None:
                den = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
                ss = getattr(getattr(den, "config", None), "sample_size", 64)
            h, w = (ss, ss) if isinstance(ss, int) else tuple(ss)
            default = (int(h) * vsf, int(w) * vsf)
        return (p.height or default[0], p.width or default[1])

    def _latent_hw(self, fam: Family, kwargs: dict[str, Any] | None = None) -> tuple[int, int]:
        pipe = self.pipe
        h, w = self.size()
        kw = {**self.params.call_kwargs, **(kwargs or {})}
        if fam.bins and kw.get("use_resolution_binning", self.call_default("use_resolution_binning")):
            ss = pipe.transformer.config.sample_size
            if ss not in fam.bins:
                raise ValueError(
                    f"{type(pipe).__name__}: resolution binning has no table for sample_size={ss}; "
                    "set call_kwargs.use_resolution_binning=false"
                )
            ratios = getattr(sys.modules[type(pipe).__module__], fam.bins[ss])
            h, w = pipe.image_processor.classify_height_width_bin(h, w, ratios=ratios)
        vsf = int(pipe.vae_scale_factor)
        if fam.packed:
            return 2 * (int(h) // (vsf * 2)), 2 * (int(w) // (vsf * 2))
        return int(h) // vsf, int(w) // vsf

    def noise_shape(self, condition: Condition) -> tuple[int, ...]:
        """The unpacked shape the pipeline draws with ``randn_tensor`` at batch size 1."""
        fam = self.family
        if fam is None:
            raise ValueError(f"{type(self.pipe).__name__} draws its own noise (generator mode); no noise shape")
        h, w = self._latent_hw(fam)
        return (1, fam.channels(self.pipe), h, w)

    @property
    def noise_dtype(self) -> torch.dtype:
        fam = self.family
        if fam is not None and fam.float32_noise:
            return torch.float32
        return _module_dtype(self.pipe)

    def pipeline_latents(self, noise: torch.Tensor) -> torch.Tensor:
        """Unpacked initial noise (B, C, h, w) -> what the pipeline's ``latents=`` expects."""
        fam = self.family
        if fam is not None and fam.packed:
            b, c, h, w = noise.shape
            return type(self.pipe)._pack_latents(noise, b, c, h, w)
        return noise

    def _generators(self, recipes: Sequence[Recipe], shape: tuple[int, ...] | None) -> list[torch.Generator]:
        """One CPU generator per candidate, in the state the vanilla call leaves it after the initial draw."""
        gens = []
        for r in recipes:
            g = torch.Generator("cpu").manual_seed(stream_seed(r))
            if shape is not None:
                torch.randn(shape, generator=g, dtype=self.noise_dtype)  # advance past the initial draw
            gens.append(g)
        return gens

    # -- fingerprint -------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        import diffusers

        p = self.params
        d = p.model_dump(exclude={"max_batch_size", "local_files_only", "cache_dir", "device", "cpu_offload"})
        d["dtype"] = str(self.torch_dtype).removeprefix("torch.")
        d["device_type"] = self.device.type
        # stable before and after loading: model + revision decide the class unless it is explicit
        d["pipeline_class"] = type(self._pipe).__name__ if self._in_memory else (p.pipeline_class or "auto")
        d["diffusers"] = diffusers.__version__
        return d

    # -- generation --------------------------------------------------------------------------------
    def call_kwargs_for(self, condition: Condition, steps: int) -> dict[str, Any]:
        """The keyword arguments of a pipeline call for ``condition`` at ``steps`` (no noise, no batch size)."""
        p, sig = self.params, self._signature
        kw: dict[str, Any] = {"prompt": condition.prompt or ""}
        neg = condition.negative_prompt if condition.negative_prompt is not None else p.negative_prompt
        if neg is not None and "negative_prompt" in sig:
            kw["negative_prompt"] = neg
        kw["num_inference_steps"] = steps
        if p.guidance_scale is not None:
            kw["guidance_scale"] = p.guidance_scale
        if "height" in sig and "width" in sig:
            kw["height"], kw["width"] = self.size()
        image = self._condition_image(condition)
        if image is not None:
            kw["image"] = image
        kw["output_type"] = "np"
        kw.update(p.call_kwargs)
        return kw

    def _condition_image(self, condition: Condition) -> np.ndarray | None:
        mode = self.params.image_input
        if mode == "none" or "image" not in self._signature:
            return None
        img = {"prior": condition.prior, "reference": condition.reference}.get(mode)
        if mode == "auto":
            img = condition.reference if condition.reference is not None else condition.prior
        return None if img is None else np.asarray(img, dtype=np.float32)

    def generate(self, recipes: Sequence[Recipe], condition: Condition, *, steps: int | None = None) -> list[Generated]:
        """Plain recipes: one pipeline call per chunk (the image plain diffusers gives); path recipes (branches,
        previews) through ``eacps.stepping.generate_paths``, or refused by ``check`` when the setup cannot step."""
        recipes = list(recipes)
        self.check(recipes)
        if any(r.is_path for r in recipes):
            return route_paths(self, recipes, condition, lambda plain: self.generate(plain, condition, steps=steps),
                               steps=steps)
        if self.family is None:
            bad = [r.key for r in recipes if not r.is_seed_only]  # also when the engine skipped check()
            if bad:
                raise ValueError(f"{type(self.pipe).__name__} accepts seed-only recipes; got {bad[:3]}")
        steps = int(steps or self.default_steps)
        if (problem := self.steps_problem(steps)) is not None:  # a preview at fewer steps, say
            raise ValueError(problem[1])
        kwargs = self.call_kwargs_for(condition, steps)
        _eval_mode(self.pipe)  # a module switched to training since (dropout) would break exact regeneration
        return self._in_chunks(len(recipes), lambda i, j: self._run(recipes[i:j], condition, kwargs))

    def _run(self, recipes: list[Recipe], condition: Condition, kwargs: dict[str, Any]) -> list[Generated]:
        n = len(recipes)
        kw = dict(kwargs)
        fam = self.family
        if fam is not None:
            noise = self.noises(recipes, condition)
            kw["latents"] = self.pipeline_latents(noise).to(self.device)
            kw["generator"] = self._generators(recipes, self.noise_shape(condition))
        else:
            kw["generator"] = self._generators(recipes, None)
        if "num_images_per_prompt" in self._signature:
            kw["num_images_per_prompt"] = n
        else:
            kw["prompt"] = [kw["prompt"]] * n
        output = self._invoke(kw)
        images = np.asarray(output.images, dtype=np.float32)
        if images.shape[0] != n:
            raise RuntimeError(f"pipeline returned {images.shape[0]} images for {n} candidates")
        nsfw = getattr(output, "nsfw_content_detected", None) or [False] * n
        return [self.judge(images[i], bool(nsfw[i])) for i in range(n)]

    def _invoke(self, kwargs: dict[str, Any]) -> Any:
        """One pipeline call (a seam for tests: out-of-memory injection, call capture)."""
        return self.pipe(**kwargs)

    def judge(self, image: np.ndarray, nsfw: bool) -> Generated:
        """A safety-checker hit is FILTERED here; NaN/inf and all-black images by the engine's one image filter,
        at this generator's ``black_level``."""
        if nsfw:
            return Generated.filtered("safety checker flagged the image", image)
        return Generated(np.ascontiguousarray(image))



def _eval_mode(pipe: Any) -> None:
    """Every torch module of the pipeline in inference mode: dropout in training mode makes images random."""
    for mod in getattr(pipe, "components", {}).values():
        if isinstance(mod, torch.nn.Module) and any(m.training for m in mod.modules()):
            mod.eval()


def _module_dtype(pipe: Any) -> torch.dtype:
    for name in ("text_encoder", "unet", "transformer", "vae"):
        mod = getattr(pipe, name, None)
        if isinstance(mod, torch.nn.Module):
            return next(mod.parameters()).dtype
    return torch.float32


def _short(text: str, limit: int = 100) -> str:
    """``text`` cut in the middle to ``limit`` characters (the message's hint must survive a one-line cut)."""
    return text if len(text) <= limit else text[: limit // 2 - 3] + "[...]" + text[-(limit // 2 - 2) :]


def _is_path(model: str) -> bool:
    """A local path rather than a hub id ('org/name'): absolute, relative with ./ ../ ~, or deeper than org/name."""
    return model.startswith(("/", ".", "~", "\\")) or model.count("/") > 1 or (len(model) > 1 and model[1] == ":")


def _load_hint(exc: BaseException, p: DiffusersParams) -> str:
    """What to do about a failed ``from_pretrained``; "download it first" only for a hub id missing offline."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    from eacps.engine.checkpoints import download_command

    msg = str(exc).lower()
    folder = Path(p.model).expanduser()
    if folder.is_dir():
        pickled = any(f.suffix in (".bin", ".ckpt", ".pt", ".pth") for f in folder.rglob("*"))
        if "safetensors" in msg and pickled and not p.allow_pickle_weights:
            return " (only safetensors weights are loaded; set allow_pickle_weights=true to accept .bin files)"
        return ""  # a local folder: the cause says what is wrong with it
    if _is_path(p.model):
        return " (no such local folder)"
    if "safetensors" in msg and not p.allow_pickle_weights:
        return " (only safetensors weights are loaded; set allow_pickle_weights=true to accept .bin files)"
    offline_miss = isinstance(exc, LocalEntryNotFoundError) or "outgoing traffic has been disabled" in msg
    if p.local_files_only and offline_miss:  # a cached repo missing a file (another revision or variant)
        fetch = download_command(p.model, p.revision)
        return f" (incomplete in the local cache and local_files_only = true: {fetch}, or set local_files_only = false)"
    return ""


__all__ = ["FAMILIES", "DiffusersGenerator", "DiffusersParams", "Family", "ModelLoadError", "ModelNotCached"]
