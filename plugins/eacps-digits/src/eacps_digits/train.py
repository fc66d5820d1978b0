"""Train the digits testbed: a class-conditional DDPM UNet and a small classifier. Deterministic.

    python -m eacps_digits.train                     # writes src/eacps_digits/weights/
    python -m eacps_digits.train --out /tmp/w --iterations 200

Everything is seeded (``--seed``), ``torch.use_deterministic_algorithms(True)`` is on and the thread
count is fixed (``--threads``), so the same command on the same torch build gives the same weights.
Held-out digits (``eacps_digits.data.split``) are never used for training or calibration.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from eacps_digits import data
from eacps_digits.models import (
    NULL_CLASS,
    SCHEDULER_CONFIG,
    UNET_CONFIG,
    WEIGHTS_DIR,
    Classifier,
    build_unet,
    sha256_file,
)

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "threads": 2,
    "iterations": 4000,
    "batch_size": 128,
    "lr": 2e-3,
    "warmup": 200,
    "ema_decay": 0.999,
    "p_uncond": 0.1,
    "classifier_epochs": 60,
    "classifier_hidden": 256,
    "classifier_features": 64,
    "realism_k": 3,
}


@contextmanager
def _deterministic(threads: int):
    prev_det, prev_threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev_det)
        torch.set_num_threads(prev_threads)


def _train_unet(x: torch.Tensor, y: torch.Tensor, cfg: dict[str, Any], log) -> Any:
    from diffusers import DDPMScheduler

    torch.manual_seed(cfg["seed"])
    unet = build_unet(UNET_CONFIG)
    ema = build_unet(UNET_CONFIG)
    ema.load_state_dict(unet.state_dict())
    ema.requires_grad_(False)
    sched = DDPMScheduler(**SCHEDULER_CONFIG)
    gen = torch.Generator("cpu").manual_seed(cfg["seed"] + 1)
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg["lr"], weight_decay=1e-4)
    n_it, warm = cfg["iterations"], cfg["warmup"]

    def lr_at(i: int) -> float:
        if i < warm:
            return (i + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (i - warm) / max(1, n_it - warm)))

    x = x * 2 - 1  # [-1, 1]
    unet.train()
    running = 0.0
    for it in range(n_it):
        idx = torch.randint(0, len(x), (cfg["batch_size"],), generator=gen)
        x0, labels = x[idx], y[idx].clone()
        drop = torch.rand(len(idx), generator=gen) < cfg["p_uncond"]
        labels[drop] = NULL_CLASS
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, sched.config.num_train_timesteps, (len(idx),), generator=gen)
        xt = sched.add_noise(x0, noise, t)
        loss = F.mse_loss(unet(xt, t, class_labels=labels).sample, noise)
        for g in opt.param_groups:
            g["lr"] = cfg["lr"] * lr_at(it)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        decay = min(cfg["ema_decay"], (1 + it) / (10 + it))
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), unet.parameters(), strict=True):
                pe.mul_(decay).add_(p.detach(), alpha=1 - decay)
        running += loss.item()
        if (it + 1) % 500 == 0:
            log(f"unet it {it + 1}/{n_it} loss {running / 500:.4f}")
            running = 0.0
    return ema.eval(), sched


def _train_classifier(x: torch.Tensor, y: torch.Tensor, cfg: dict[str, Any], log) -> Classifier:
    torch.manual_seed(cfg["seed"] + 2)
    model = Classifier(cfg["classifier_hidden"], cfg["classifier_features"])
    gen = torch.Generator("cpu").manual_seed(cfg["seed"] + 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-3)
    flat = x.reshape(len(x), 64)
    for epoch in range(cfg["classifier_epochs"]):
        perm = torch.randperm(len(flat), generator=gen)
        total = 0.0
        for s in range(0, len(perm), 64):
            b = perm[s : s + 64]
            # light pixel-noise augmentation so generated (slightly off-manifold) digits get sane probabilities
            xb = (flat[b] + 0.1 * torch.randn(flat[b].shape, generator=gen)).clamp(0, 1)
            loss = F.cross_entropy(model(xb), y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        if (epoch + 1) % 20 == 0:
            log(f"classifier epoch {epoch + 1} loss {total / len(flat):.4f}")
    model.eval()
    with torch.no_grad():
        model.feature_mean.copy_(model.features(flat).mean(0))
    return model


def realism_tau(x_train: np.ndarray, k: int) -> float:
    """Median over training digits of the mean L2 distance to their k nearest *other* training digits."""
    flat = torch.from_numpy(np.ascontiguousarray(x_train.reshape(len(x_train), -1), dtype=np.float32))
    d = torch.cdist(flat, flat)
    d.fill_diagonal_(float("inf"))
    knn = d.topk(k, dim=1, largest=False).values.mean(1)
    return float(knn.median())


def train(out_dir: str | Path | None = None, *, log=print, **overrides: Any) -> dict[str, Any]:
    """Train both models and write them (safetensors + JSON) to ``out_dir`` (default: the package's weights/).

    Keyword overrides: any key of ``DEFAULTS`` (e.g. ``iterations=5`` for a quick test run).
    Returns the metadata written to ``training.json``.
    """
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown training options {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **overrides}
    out = Path(out_dir) if out_dir is not None else WEIGHTS_DIR
    x_np, y_np = data.train_data()
    _, y_all = data.all_digits()
    x = torch.from_numpy(np.ascontiguousarray(x_np.transpose(0, 3, 1, 2)))  # (N, 1, 8, 8) in [0, 1]
    y = torch.from_numpy(y_np.copy())
    t0 = time.perf_counter()
    with _deterministic(cfg["threads"]):
        unet, sched = _train_unet(x, y, cfg, log)
        t_unet = time.perf_counter() - t0
        clf = _train_classifier(x, y, cfg, log)
        t_total = time.perf_counter() - t0
        held = data.held_out_indices()
        xh = torch.from_numpy(np.ascontiguousarray(data.all_digits()[0][held]))
        with torch.no_grad():
            acc = float((clf(xh).argmax(1).numpy() == y_all[held]).mean())
        tau = realism_tau(x_np, cfg["realism_k"])
    log(f"held-out classifier accuracy {acc:.4f}; realism tau {tau:.4f}; {t_total:.1f}s")

    out.mkdir(parents=True, exist_ok=True)
    unet.save_pretrained(out / "unet", safe_serialization=True)
    sched.save_config(out / "scheduler")
    save_file({k: v.contiguous() for k, v in clf.state_dict().items()}, str(out / "classifier.safetensors"))
    clf_cfg = {
        "hidden": cfg["classifier_hidden"],
        "features": cfg["classifier_features"],
        "realism_k": cfg["realism_k"],
        "realism_tau": tau,
        "held_out_accuracy": acc,
    }
    (out / "classifier.json").write_text(json.dumps(clf_cfg, indent=2) + "\n")
    meta = {
        "command": "python -m eacps_digits.train",
        "options": cfg,
        "torch": torch.__version__,
        "data_sha256": data.data_sha256(),
        "split_seed": data.SPLIT_SEED,
        "split_sha256": data.split_sha256(),
        "n_train": len(x_np),
        "n_held_out": len(held),
        "seconds_unet": round(t_unet, 1),
        "seconds_total": round(t_total, 1),
        "unet_sha256": sha256_file(out / "unet" / "diffusion_pytorch_model.safetensors"),
        "classifier_sha256": sha256_file(out / "classifier.safetensors"),
    }
    (out / "training.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m eacps_digits.train", description=__doc__.split("\n")[0])
    p.add_argument("--out", default=None, help="output directory (default: the package's weights/)")
    for k, v in DEFAULTS.items():
        p.add_argument(f"--{k.replace('_', '-')}", type=type(v), default=v)
    a = vars(p.parse_args(argv))
    out = a.pop("out")
    meta = train(out, **a)
    print(json.dumps({k: meta[k] for k in ("seconds_total", "unet_sha256", "classifier_sha256")}, indent=2))


if __name__ == "__main__":
    main()
