"""Tiny, seeded, offline pipelines for tests, benchmarks and notebooks.

The components follow diffusers' own ``get_dummy_components()`` tests (tiny UNet/transformer, tiny VAE,
tiny text encoders), but nothing comes from the hub: the CLIP BPE tokenizer is written to a folder
(``vocab.json`` + ``merges.txt``), the T5 tokenizer is a ``tokenizers`` Unigram model and the Gemma tokenizer
(Sana) a ``tokenizers`` byte-fallback BPE model. The weights are random; the pipelines are only good for
checking plumbing, shapes and exact reproduction.
"""

from __future__ import annotations

import inspect
import json
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import diffusers
import torch

CLIP_VOCAB = 1000
T5_VOCAB = 400
GEMMA_VOCAB = 512


def _bytes_to_unicode() -> list[str]:
    """GPT-2/CLIP's byte -> printable unicode table, in byte order."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    table = bytes_to_unicode()
    return [table[b] for b in range(256)]


WORDS = ("a", "an", "the", "cat", "dog", "photo", "of", "painting", "squirrel", "eating", "burger", "red", "blue")


def write_clip_tokenizer(folder: str | Path) -> Path:
    """Write a tiny CLIP BPE tokenizer (vocab.json + merges.txt, < 1000 tokens) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chars = _bytes_to_unicode()
    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in chars:
        vocab.setdefault(c, len(vocab))
    for c in chars:
        vocab.setdefault(c + "</w>", len(vocab))
    merges: list[str] = []
    for w in WORDS:  # whole-word merges for a few common words: left-to-right pairs
        cur = w[0]
        for i, ch in enumerate(w[1:], start=1):
            nxt = ch + ("</w>" if i == len(w) - 1 else "")
            merges.append(f"{cur} {nxt}")
            cur = cur + nxt
            vocab.setdefault(cur, len(vocab))
    assert len(vocab) <= CLIP_VOCAB
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(dict.fromkeys(merges)) + "\n")
    return folder


def clip_tokenizer(folder: str | Path | None = None) -> Any:
    from transformers import CLIPTokenizer

    folder = write_clip_tokenizer(folder or tempfile.mkdtemp(prefix="tiny-clip-"))
    tok = CLIPTokenizer.from_pretrained(str(folder))
    tok.model_max_length = 77
    return tok


def t5_tokenizer() -> Any:
    """A tiny T5-style (Unigram, ``</s>`` appended) tokenizer built with the ``tokenizers`` library."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [("▁" + w, -2.0) for w in WORDS]
    pieces += [("▁", -3.0)]
    pieces += [(chr(c), -5.0) for c in range(ord("a"), ord("z") + 1)]
    pieces += [(chr(c), -6.0) for c in range(ord("A"), ord("Z") + 1)]
    pieces += [(c, -7.0) for c in "0123456789.,!?'-"]
    tok = T5Tokenizer(vocab=pieces, extra_ids=0)
    tok.model_max_length = 512
    return tok


def gemma_tokenizer() -> Any:
    """A tiny Gemma-style tokenizer: byte-fallback BPE, spaces as ``▁``, ``<bos>`` prepended, ``<pad>`` = 0.

    Built in memory with ``tokenizers`` (no sentencepiece file) and wrapped in ``GemmaTokenizerFast``; ids stay
    below ``GEMMA_VOCAB``. Text outside the few merged words falls back to characters, then to UTF-8 bytes.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import GemmaTokenizerFast

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4}
    vocab.update({f"<0x{b:02X}>": 5 + b for b in range(256)})
    for c in "▁abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'-\n":
        vocab.setdefault(c, len(vocab))
    merges: list[tuple[str, str]] = []
    for w in WORDS:  # "▁" + word, merged left to right
        cur = "▁"
        for ch in w:
            merges.append((cur, ch))
            cur += ch
            vocab.setdefault(cur, len(vocab))
    assert len(vocab) <= GEMMA_VOCAB
    bpe = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    bpe.normalizer = normalizers.Replace(" ", "▁")
    bpe.pre_tokenizer = pre_tokenizers.Split(" ", "merged_with_previous")
    bpe.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    bpe.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", vocab["<bos>"])]
    )
    tok = GemmaTokenizerFast(
        tokenizer_object=bpe, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>", pad_token="<pad>"
    )
    tok.model_max_length = 8192
    return tok


def _clip_config(**kw: Any) -> Any:
    from transformers import CLIPTextConfig

    base = dict(
        bos_token_id=0,
        eos_token_id=2,
        hidden_size=32,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=2,
        pad_token_id=1,
        vocab_size=CLIP_VOCAB,
        hidden_act="gelu",
        projection_dim=32,
    )
    base.update(kw)
    return CLIPTextConfig(**base)


def _t5_encoder() -> Any:
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    cfg = T5Config(
        vocab_size=T5_VOCAB,
        d_model=32,
        d_ff=37,
        d_kv=8,
        num_heads=4,
        num_layers=2,
        relative_attention_num_buckets=8,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    return T5EncoderModel(cfg).eval()


def _small_vae(latent_channels: int = 4, levels: int = 2, **kw: Any) -> Any:
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(
        block_out_channels=[4, 8][:levels],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * levels,
        up_block_types=["UpDecoderBlock2D"] * levels,
        latent_channels=latent_channels,
        norm_num_groups=2 if levels > 1 else 1,
        layers_per_block=1,
        **kw,
    )


def sd_components(width: int = 4) -> dict[str, Any]:
    """SD1.5-style: UNet (cross-attention 32), KL VAE (scale factor 2), one CLIP text encoder, DDIM."""
    from diffusers import DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(width, 2 * width),
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=2,
        attention_head_dim=2,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    vae = _small_vae()
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(_clip_config()).eval()
    return {
        "unet": unet.eval(),
        "scheduler": scheduler,
        "vae": vae.eval(),
        "text_encoder": text_encoder,
        "tokenizer": clip_tokenizer(),
        "safety_checker": None,
        "feature_extractor": None,
        "image_encoder": None,
        "requires_safety_checker": False,
    }


def sdxl_components() -> dict[str, Any]:
    """SDXL-style: text_time UNet, two CLIP encoders (one with projection), Euler."""
    from diffusers import EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(2, 4),
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=80,  # 6 * 8 + 32
        cross_attention_dim=64,
        norm_num_groups=1,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, steps_offset=1, beta_schedule="scaled_linear", timestep_spacing="leading"
    )
    vae = _small_vae()
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(_clip_config()).eval()
    torch.manual_seed(0)
    text_encoder_2 = CLIPTextModelWithProjection(_clip_config()).eval()
    tok = clip_tokenizer()
    return {
        "unet": unet.eval(),
        "scheduler": scheduler,
        "vae": vae.eval(),
        "text_encoder": text_encoder,
        "tokenizer": tok,
        "text_encoder_2": text_encoder_2,
        "tokenizer_2": tok,
        "image_encoder": None,
        "feature_extractor": None,
    }


def sd3_components() -> dict[str, Any]:
    """SD3-style: MMDiT transformer, two CLIP encoders with projection, a T5 encoder, flow matching."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel
    from transformers import CLIPTextModelWithProjection

    torch.manual_seed(0)
    transformer = SD3Transformer2DModel(
        sample_size=32,
        patch_size=1,
        in_channels=4,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=4,
        caption_projection_dim=32,
        joint_attention_dim=32,
        pooled_projection_dim=64,
        out_channels=4,
    )
    torch.manual_seed(0)
    te = CLIPTextModelWithProjection(_clip_config()).eval()
    torch.manual_seed(0)
    te2 = CLIPTextModelWithProjection(_clip_config()).eval()
    vae = _small_vae(levels=1, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5)
    tok = clip_tokenizer()
    return {
        "scheduler": FlowMatchEulerDiscreteScheduler(),
        "text_encoder": te,
        "text_encoder_2": te2,
        "text_encoder_3": _t5_encoder(),
        "tokenizer": tok,
        "tokenizer_2": tok,
        "tokenizer_3": t5_tokenizer(),
        "transformer": transformer.eval(),
        "vae": vae.eval(),
        "image_encoder": None,
        "feature_extractor": None,
    }


def flux_components() -> dict[str, Any]:
    """FLUX.1-style: packed latents (2x2 patches), CLIP + T5 encoders, flow matching."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
    )
    torch.manual_seed(0)
    te = CLIPTextModel(_clip_config()).eval()
    vae = _small_vae(
        latent_channels=4,
        levels=2,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.06,
        scaling_factor=1.5,
    )
    return {
        "scheduler": FlowMatchEulerDiscreteScheduler(),
        "text_encoder": te,
        "text_encoder_2": _t5_encoder(),
        "tokenizer": clip_tokenizer(),
        "tokenizer_2": t5_tokenizer(),
        "transformer": transformer.eval(),
        "vae": vae.eval(),
        "image_encoder": None,
        "feature_extractor": None,
    }


def pixart_components() -> dict[str, Any]:
    """PixArt-Σ-style: PixArt transformer (learned sigma), T5 encoder, DDIM."""
    from diffusers import DDIMScheduler, PixArtTransformer2DModel

    torch.manual_seed(0)
    transformer = PixArtTransformer2DModel(
        sample_size=8,
        num_layers=2,
        patch_size=2,
        attention_head_dim=8,
        num_attention_heads=3,
        caption_channels=32,
        in_channels=4,
        cross_attention_dim=24,
        out_channels=8,
        attention_bias=True,
        activation_fn="gelu-approximate",
        num_embeds_ada_norm=1000,
        norm_type="ada_norm_single",
        norm_elementwise_affine=False,
        norm_eps=1e-6,
    )
    return {
        "transformer": transformer.eval(),
        "vae": _small_vae().eval(),
        "scheduler": DDIMScheduler(),
        "text_encoder": _t5_encoder(),
        "tokenizer": t5_tokenizer(),
    }


def sana_components() -> dict[str, Any]:
    """Sana-style: linear-attention DiT, deep-compression autoencoder (AutoencoderDC), Gemma2 encoder, flow matching."""
    from diffusers import AutoencoderDC, FlowMatchEulerDiscreteScheduler, SanaTransformer2DModel
    from transformers import Gemma2Config, Gemma2Model

    torch.manual_seed(0)
    transformer = SanaTransformer2DModel(
        patch_size=1,
        in_channels=4,
        out_channels=4,
        num_layers=1,
        num_attention_heads=2,
        attention_head_dim=4,
        num_cross_attention_heads=2,
        cross_attention_head_dim=4,
        cross_attention_dim=8,
        caption_channels=8,
        sample_size=32,
    )
    torch.manual_seed(0)
    vae = AutoencoderDC(
        in_channels=3,
        latent_channels=4,
        attention_head_dim=2,
        encoder_block_types=("ResBlock", "EfficientViTBlock"),
        decoder_block_types=("ResBlock", "EfficientViTBlock"),
        encoder_block_out_channels=(8, 8),
        decoder_block_out_channels=(8, 8),
        encoder_qkv_multiscales=((), (5,)),
        decoder_qkv_multiscales=((), (5,)),
        encoder_layers_per_block=(1, 1),
        decoder_layers_per_block=(1, 1),
        downsample_block_type="conv",
        upsample_block_type="interpolate",
        decoder_norm_types="rms_norm",
        decoder_act_fns="silu",
        scaling_factor=0.41407,
    )
    torch.manual_seed(0)
    cfg = Gemma2Config(
        head_dim=16,
        hidden_size=8,  # = transformer caption_channels
        initializer_range=0.02,
        intermediate_size=64,
        max_position_embeddings=8192,
        num_attention_heads=2,
        num_hidden_layers=1,
        num_key_value_heads=2,
        vocab_size=GEMMA_VOCAB,  # diffusers' test uses 8, which only fits the empty prompt
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
        attn_implementation="eager",
    )
    text_encoder = Gemma2Model(cfg).eval()
    return {
        "transformer": transformer.eval(),
        "vae": vae.eval(),
        "scheduler": FlowMatchEulerDiscreteScheduler(shift=7.0),
        "text_encoder": text_encoder,
        "tokenizer": gemma_tokenizer(),
    }


BUILDERS = {
    "sd": ("StableDiffusionPipeline", sd_components),
    "sd-img2img": ("StableDiffusionImg2ImgPipeline", sd_components),
    "sdxl": ("StableDiffusionXLPipeline", sdxl_components),
    "sd3": ("StableDiffusion3Pipeline", sd3_components),
    "flux": ("FluxPipeline", flux_components),
    "pixart-sigma": ("PixArtSigmaPipeline", pixart_components),
    "pixart-alpha": ("PixArtAlphaPipeline", pixart_components),
    "sana": ("SanaPipeline", sana_components),
}


_FUNCS = {f.__name__: f for _, f in BUILDERS.values()}


@cache
def _components(builder: str) -> dict[str, Any]:
    return _FUNCS[builder]()


def tiny_pipeline(family: str) -> Any:
    """A fresh tiny pipeline of ``family`` (one of ``BUILDERS``), on CPU in float32.

    Components are built once per process and shared between pipelines of the same builder.
    """
    cls_name, builder = BUILDERS[family]
    comps = _components(builder.__name__)
    cls = getattr(diffusers, cls_name)
    accepted = inspect.signature(cls.__init__).parameters
    pipe = cls(**{k: v for k, v in comps.items() if k in accepted})
    pipe.set_progress_bar_config(disable=True)
    return pipe


CALL_KWARGS: dict[str, dict[str, Any]] = {
    "sd": {},
    "sd-img2img": {},
    "sdxl": {},
    "sd3": {"max_sequence_length": 16},
    "flux": {"max_sequence_length": 16},
    "pixart-sigma": {"max_sequence_length": 16, "use_resolution_binning": False, "clean_caption": False},
    "pixart-alpha": {"max_sequence_length": 16, "use_resolution_binning": False, "clean_caption": False},
    "sana": {"max_sequence_length": 16, "use_resolution_binning": False},
}
"""Call kwargs the tiny pipelines need: short T5/Gemma sequences, no resolution bins (tiny sample sizes).

Sana keeps its default ``complex_human_instruction`` (the long instruction is prepended to the prompt and run
through the tokenizer and Gemma2), as a plain ``pipe(prompt)`` call does."""


def vanilla(pipe: Any, prompt: str, seed: int, *, steps: int = 2, size: int | None = 32, **kw: Any) -> Any:
    """The plain diffusers call a user makes with a winning seed: one image, float32 HWC in [0, 1]."""
    if size is not None:
        kw.setdefault("height", size)
        kw.setdefault("width", size)
    out = pipe(
        prompt, num_inference_steps=steps, generator=torch.Generator("cpu").manual_seed(seed), output_type="np", **kw
    )
    return out.images[0]
