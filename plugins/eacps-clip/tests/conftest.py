"""Tiny random CLIP and DINOv2 checkpoints built from configs and saved as safetensors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


def build_tiny_clip(path: Path, *, seed: int = 0, safetensors: bool = True) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor, CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode  # GPT-2 / CLIP byte -> unicode table

    chars = list(bytes_to_unicode().values())
    merges = [("r", "e"), ("c", "u"), ("cu", "b"), ("cub", "e</w>"), ("d", "o"), ("do", "g</w>")]
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges)
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer,
    )
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=32,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=16,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    path.mkdir(parents=True, exist_ok=True)
    processor.save_pretrained(path)
    if safetensors:
        model.save_pretrained(path)
    else:
        config.save_pretrained(path)
        torch.save(model.state_dict(), path / "pytorch_model.bin")
    return path


def build_tiny_dinov2(path: Path, *, seed: int = 0) -> Path:
    from transformers import BitImageProcessorPil, Dinov2Config, Dinov2Model

    torch.manual_seed(seed)
    model = Dinov2Model(
        Dinov2Config(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        )
    ).eval()
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    BitImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def tiny_dinov2(tmp_path_factory) -> Path:
    return build_tiny_dinov2(tmp_path_factory.mktemp("tiny-dinov2"))
