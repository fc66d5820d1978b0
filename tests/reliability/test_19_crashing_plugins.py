"""Promise 19: a plugin that ends the process (``os._exit``, a segfault) cannot block a run forever.

The batch being computed is recorded in the store before it is submitted. When the process dies with crash
evidence (the plugin's ``os._exit`` or a fatal signal's traceback in ``RUN_DIR/.crash``), the resume names the
batch on stderr and computes it alone; a batch that ended the process twice is FAILED with that reason and the
run completes. Every other candidate equals a run without the faulty batch.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import crashing
import pytest
from configs import edit, toy, write
from runs import rows

from eacps.strategy import SeedStream

CONFIG = toy(strategy="best-of-n", budget=12, batch_size=3)
CONFIG = edit(CONFIG, "conditions", CONFIG["conditions"][:1])


def run(tmp_path: Path, out: Path, seed: int, how: str) -> tuple[int, str]:
    generator = {"name": "toy-crash", "params": {"crash_seed": seed, "how": how, "steps": 10}}
    cfg = write(tmp_path / f"{out.name}.toml", edit(CONFIG, "generator", generator))
    p = subprocess.run(crashing.run_command(cfg, out), capture_output=True, text=True, timeout=300)
    return p.returncode, p.stderr


@pytest.mark.parametrize("how, code", [("exit", 3), ("segfault", -11)])
def test_a_batch_that_ends_the_process_twice_is_failed_and_the_run_completes(tmp_path, figures, how, code):
    crash_seed = SeedStream(0).take(12)[7]  # in best-of-n's third batch (seq 6..8)
    ref_rc, ref_err = run(tmp_path, tmp_path / "ref", -1, how)
    assert ref_rc == 0, ref_err
    out, codes, errs = tmp_path / "run", [], []
    for _ in range(4):
        rc, err = run(tmp_path, out, crash_seed, how)
        codes.append(rc)
        errs.append(err)
        if rc == 0:
            break
    assert codes == [code, code, 0], errs  # died, died again with the batch alone, then skipped it
    assert "Traceback" not in errs[2] and "the previous run died while computing batch" in errs[1]
    assert "died with it 2 time(s)" in errs[2] and "(seq 6..8)" in errs[2]
    final, ref = rows(out), rows(tmp_path / "ref")
    assert [r[:5] for r in final] == [r[:5] for r in ref]  # the same candidates in the same searches
    skipped = [r for r in final if r[5] == "FAILED"]
    assert {r[1] for r in skipped} == {6, 7, 8} and all("died 2 times while computing this batch" in r[7]
                                                     for r in skipped)
    others = [(a, b) for a, b in zip(final, ref, strict=True) if a[5] != "FAILED"]
    assert all(a == b for a, b in others)  # every other candidate exactly as without the fault
    figures("19-crashing-plugins", process_deaths=2, runs=len(codes), batches_skipped=len(skipped) // 3,
            candidates_checked=len(final), other_candidates_changed=0)
