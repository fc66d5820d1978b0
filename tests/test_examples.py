"""Every config in examples/ is valid without weights: it parses, every plugin it names is registered, and
every parameter validates against that plugin's Params (the same checks ``eacps run`` makes before loading)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from eacps import plugins
from eacps.api import make_strategy
from eacps.config import ConfigError, parse_config, validate_params

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.toml"))


def check_example(raw: dict[str, Any]) -> list[str]:
    """Validate a parsed example like ``eacps run`` does before loading any model; the plugin names used."""
    cfg = parse_config(raw)
    used = []
    gen = plugins.get("generator", cfg.generator.name)
    validate_params(gen.Params, cfg.generator.params, "generator.params")
    used.append(cfg.generator.name)
    for pot, section in ((cfg.potential, "potential"), (cfg.preview_potential, "preview_potential")):
        for name, c in (pot.criteria if pot is not None else {}).items():
            cls = plugins.get("scorer", c.scorer)
            cls(validate_params(cls.Params, c.params, f"{section}.criteria.{name}.params"))  # no model loaded
            used.append(c.scorer)
    for s in cfg.all_searches():
        make_strategy(s.strategy, s.params, budget=s.budget, seed=s.seed)
        used.append(s.strategy)
    executor = plugins.get("executor", cfg.executor.name)
    validate_params(executor.Params, cfg.executor.params, "executor.params")
    if cfg.tasks is not None:
        plugins.get("tasks", cfg.tasks.name)
    return used


def test_there_are_real_model_examples():
    names = {p.name for p in EXAMPLES}
    assert {"sdxl-vlm.toml", "flux-schnell-openai-judge.toml", "sd35-character.toml",
            "img2img-keep-scene.toml", "digits.toml"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid_and_commented(path):
    text = path.read_text()
    assert text.startswith("#") and "eacps run examples/" + path.name in text, "first lines say how to run it"
    used = check_example(tomllib.loads(text))
    assert len(used) >= 3


@pytest.mark.parametrize(
    "path, mutate, field",
    [
        ("sdxl-vlm.toml", lambda r: r["generator"]["params"].update(stepz=3), "generator.params.stepz"),
        ("flux-schnell-openai-judge.toml", lambda r: r["potential"]["criteria"]["realism"]["params"].update(
            criterion="beauty"), "potential.criteria.realism.params.criterion"),
        ("sd35-character.toml", lambda r: r["potential"]["criteria"]["identity"].update(scorer="image-similarty"),
         "image-similarty"),
        ("img2img-keep-scene.toml", lambda r: r["search"]["params"].update(neighborhood="near"),
         "search.params.neighborhood"),
    ],
)
def test_a_broken_example_is_caught(path, mutate, field):
    """The check can fail: one wrong field in a copy of each example is reported by name."""
    raw = tomllib.loads((EXAMPLES[0].parent / path).read_text())
    mutate(raw)
    with pytest.raises((ConfigError, plugins.UnknownPluginError)) as exc:
        check_example(raw)
    assert field in str(exc.value)


def test_img2img_example_uses_a_seed_only_strategy():
    """Generator-mode pipelines accept seed-only recipes; the example's strategy must not ask for moves."""
    raw = tomllib.loads((EXAMPLES[0].parent / "img2img-keep-scene.toml").read_text())
    s = parse_config(raw).all_searches()[0]
    strategy = make_strategy(s.strategy, s.params, budget=s.budget, seed=s.seed)
    recipes = strategy.ask(s.budget)
    assert recipes and all(r.is_seed_only for r in recipes)
