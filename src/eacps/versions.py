"""Library versions recorded with every run session."""

from __future__ import annotations

import importlib.metadata
import platform
import sys

PACKAGES = ("eacps", "torch", "numpy", "diffusers", "transformers", "scipy", "pydantic", "pluggy")


def library_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    for dist in importlib.metadata.distributions():  # plugin distributions
        name = dist.metadata["Name"] or ""
        if name.startswith("eacps-"):
            out[name] = dist.version
    return out
