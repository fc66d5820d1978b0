"""Promise 16: search ids are unambiguous. Condition ids and search labels containing the separator `/` or the
escape `%` (every pair that joined naively to the same id) give distinct searches, each holding only its own
condition's candidates, with its own best."""

from __future__ import annotations

import sqlite3

from configs import toy, write

from eacps.cli import main
from eacps.store import search_id

CONDITIONS = ["p", "p/q", "p%2Fq", "p/q/r"]
LABELS = ["r", "q/r", "q%2Fr", "r/b3"]


def test_adversarial_ids_give_distinct_searches(tmp_path, toy_plugin, figures):
    naive = [f"{c}/{lb}/b3/s0" for c in CONDITIONS for lb in LABELS]
    assert len(set(naive)) < len(naive)  # the adversarial set really collides when joined naively
    cfg = toy()
    del cfg["search"]
    cfg["searches"] = [{"strategy": "best-of-n", "label": lb, "budget": 3, "batch_size": 3} for lb in LABELS]
    cfg["conditions"] = [{"id": c, "prompt": f"prompt {i}"} for i, c in enumerate(CONDITIONS)]
    out = tmp_path / "run"
    assert main(["run", str(write(tmp_path / "c.toml", cfg)), "--out", str(out), "--quiet"]) == 0
    db = sqlite3.connect(out / "store.sqlite")
    got = db.execute("SELECT search, GROUP_CONCAT(DISTINCT condition), COUNT(*) FROM candidates WHERE role = 'search' "
                     "GROUP BY search").fetchall()
    db.close()
    expected = {search_id(c, lb, "b3", "s0"): c for c in CONDITIONS for lb in LABELS}
    assert len(expected) == len(CONDITIONS) * len(LABELS)
    assert {s: c for s, c, _ in got} == expected  # one search per (condition, label), only its own condition
    assert all(n == 3 for _, _, n in got)
    figures("16-ids", searches=len(got), naive_collisions=len(naive) - len(set(naive)), cross_condition=0)
