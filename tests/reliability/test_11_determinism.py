"""Promise 11: the same config twice gives identical stores (recipes, statuses, potentials, scores, images),
and the library versions are recorded with the run."""

from __future__ import annotations

import json
import sqlite3

from configs import digits, edit, write
from runs import digest

from eacps import plugins
from eacps.cli import main

CONFIG = digits("eacps", 12, batch_size=4, params={"k_global": 4, "m": 2, "k_local": 4, "neighborhood": "pcn"})
CONFIG = edit(CONFIG, "generator.params", {"steps": 4})
CONFIG = edit(CONFIG, "conditions", [{"id": "seven", "class_label": 7, "extra": {"reference_index": 7}}])
COLS = "search, seq, role, condition, recipe, steps, cache_key, status, potential, reason, scores, image"


def test_same_config_twice_identical_stores(tmp_path, monkeypatch, figures):
    monkeypatch.setenv("EACPS_LOAD_PLUGINS", "eacps-digits")
    plugins.reset()
    cfg = write(tmp_path / "digits.toml", CONFIG)
    stores = []
    try:
        for name in ("one", "two"):
            assert main(["run", str(cfg), "--out", str(tmp_path / name), "--quiet"]) == 0
            with sqlite3.connect(tmp_path / name / "store.sqlite") as db:
                stores.append(db.execute(f"SELECT {COLS} FROM candidates ORDER BY search, role, seq").fetchall())
                versions = json.loads(db.execute("SELECT versions FROM sessions").fetchone()[0])
    finally:
        plugins.reset()
    assert len(stores[0]) == 13 and stores[0] == stores[1]
    images = [{k: v for k, v in digest(tmp_path / n).items() if k.startswith("images/")} for n in ("one", "two")]
    assert len(images[0]) == 13 and images[0] == images[1]  # bit-identical PNGs
    for lib in ("python", "eacps", "torch", "numpy", "diffusers", "eacps-digits"):
        assert versions.get(lib), lib
    figures("11-determinism", runs=2, candidates_checked=len(stores[0]), differences=0)
