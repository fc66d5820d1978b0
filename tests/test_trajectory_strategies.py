"""What the trajectory strategies (fk-steering, tree-search, multi-fidelity) share, end to end: searches on the digits
model (regeneration from the recipe alone, capability checks, kill -9) and failing previews. What each one asks and
is charged is tested in its own file (tests/test_fk_steering.py, tests/test_tree_search.py,
tests/test_multi_fidelity.py)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import configs
import numpy as np
import pytest
import runs as run_helpers

from eacps import Recipe, Status
from eacps.recipe import Branch
from eacps.stepping import StateCache, generate_paths
from eacps.store import StoreError, quantize


# -- end to end on the stepping toy and on the digits model --------------------------------------------------------
@pytest.fixture(scope="module")
def digits_setup():
    import eacps_digits

    import eacps
    from eacps.config import create

    gen = create("generator", "digits")
    pot = eacps.Potential.from_scorers(consistency=create("scorer", "digits-consistency"),
                                       realism=create("scorer", "digits-realism"),
                                       identity=create("scorer", "digits-identity"))
    return gen, pot, eacps_digits.tasks(1)[0]


def toy_setup():
    from toy import ToyGenerator, ToyGeneratorParams, ToyMeanScorer, ToyScorer

    from eacps.potential import Criterion, Potential
    from eacps.types import Condition

    pot = Potential([Criterion("realism", ToyScorer(), 4.0), Criterion("consistency", ToyMeanScorer(), 1.0)])
    return ToyGenerator(ToyGeneratorParams(stepping=True)), pot, Condition("t0", prompt="toy")


@pytest.mark.parametrize("model", ["toy", pytest.param("digits", marks=pytest.mark.slow)])
@pytest.mark.parametrize("strategy", ["fk-steering", "tree-search", "multi-fidelity"])
def test_search_end_to_end_regenerates_from_the_recipe(request, model, strategy):
    import eacps

    gen, pot, task = toy_setup() if model == "toy" else request.getfixturevalue("digits_setup")
    res = eacps.search(task, generator=gen, potential=pot, strategy=strategy, budget=10, seed=0)
    assert res.best is not None and res.best.recipe.until is None
    assert res.cost.steps <= 10 * gen.default_steps  # budget B = B·T steps, charged per model call
    assert res.cost.candidates > 10  # previews: more looks than best-of-10
    assert res.cost.scorer_calls["realism"] == sum(c.image_path is not None for c in res.history)
    again = generate_paths(gen, [res.best.recipe], task, cache=StateCache())[0].image
    assert np.array_equal(quantize(again), res.best.image)  # the winner from its recipe alone
    if strategy != "multi-fidelity":  # resampled copies and tree siblings branch
        assert any(c.recipe.branches for c in res.history)
        assert res.best.recipe.branches or strategy == "tree-search" or model == "toy"


def test_stepping_strategy_on_a_generator_that_cannot_step_is_a_config_error():
    from toy import ToyGenerator, ToyScorer

    import eacps
    from eacps.config import ConfigError
    from eacps.potential import Criterion, Potential
    from eacps.types import Condition

    with pytest.raises(ConfigError, match="stepping"):
        eacps.search(Condition("c"), generator=ToyGenerator(), potential=Potential([Criterion("r", ToyScorer(), 1)]),
                     strategy="tree-search", budget=4)


def test_branch_outside_the_schedule_is_refused_before_compute():
    gen = toy_setup()[0]
    with pytest.raises(ValueError, match="outside the schedule"):
        gen.check([Recipe(seed=1, branches=(Branch(gen.default_steps, 0.5, 1),))])


# -- kill -9 during a tree search resumes to the same winner without recomputing finished nodes ----------------------


def _rows(out: Path) -> list[tuple]:
    if not (out / "store.sqlite").exists():
        return []
    try:
        return [(c.search, c.seq, c.recipe.key, c.status.value, c.potential, c.session)
                for c in sorted(run_helpers.candidates(out, role="search"), key=lambda c: c.id)]
    except (StoreError, sqlite3.OperationalError):  # created, schema not written yet
        return []


def _eacps(cfg: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "eacps", "run", str(cfg), "--out", str(out), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
@pytest.mark.parametrize(("strategy", "params"), [("tree-search", {}), ("fk-steering", {}),
                                                  ("fk-steering", {"schedule": "adaptive"}),
                                                  ("multi-fidelity", {"schedule": "adaptive"})],
                         ids=["tree-search", "fk-steering", "fk-steering-adaptive", "multi-fidelity-adaptive"])
def test_kill_9_during_a_trajectory_search_resumes(tmp_path, strategy, params):
    """Adaptive schedules decide from told results only, so the resumed search replays the same decisions."""
    cfg = configs.write(tmp_path / "cfg.toml", configs.digits(strategy, 16, batch_size=4, params=params))
    ref = _eacps(cfg, tmp_path / "ref")
    assert ref.wait(300) == 0, ref.stderr.read().decode()
    reference = _rows(tmp_path / "ref")
    out = tmp_path / "run"
    proc = _eacps(cfg, out)
    t0 = time.time()
    while len(_rows(out)) < len(reference) // 2:
        assert proc.poll() is None and time.time() - t0 < 300, proc.stderr.read().decode()
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _rows(out)
    assert 0 < len(before) < len(reference)
    again = _eacps(cfg, out)
    assert again.wait(300) == 0, again.stderr.read().decode()
    after = _rows(out)
    assert after[: len(before)] == before  # finished nodes kept, not recomputed or rewritten
    assert {r[5] for r in after[len(before):]} != {r[5] for r in before}  # the rest by the new session
    # the same search, node for node (recipes, statuses), and so the same winner. Potentials may differ in the last
    # digits: a resumed run recomputes prefixes that the killed one had in memory, in other batch compositions
    # (CPU convolutions differ by < 1e-5 across batch sizes; an 8-bit pixel may then flip by one level).
    assert [r[:4] for r in after] == [r[:4] for r in reference]
    assert all(abs(a[4] - b[4]) < 0.05 for a, b in zip(after, reference, strict=True) if a[4] is not None)
    best = lambda rows: max((r for r in rows if r[4] is not None and '"until"' not in r[2]), key=lambda r: r[4])[2]  # noqa: E731
    assert best(after) == best(reference)


@pytest.mark.parametrize("strategy", ["tree-search", "fk-steering", "multi-fidelity"])
def test_a_failing_preview_fails_its_branch_and_the_search_goes_on(strategy):
    from toy import ToyGenerator, ToyGeneratorParams, ToyScorer

    import eacps
    from eacps.potential import Criterion, Potential
    from eacps.scorer import Scorer
    from eacps.types import Condition

    class Flaky(Scorer):
        name = "flaky-on-dark"

        def score(self, images, condition):
            return [RuntimeError("dark preview") if float(np.mean(img)) < 0.45 else 5.0 for img in images]

    pot = Potential([Criterion("realism", ToyScorer(), 4.0), Criterion("flaky", Flaky(), 1.0)])
    res = eacps.search(Condition("c"), generator=ToyGenerator(ToyGeneratorParams(stepping=True)), potential=pot,
                       strategy=strategy, budget=12, seed=0)
    failed = [c for c in res.history if c.status is Status.FAILED]
    assert failed and all("dark preview" in c.reason for c in failed)
    assert res.best is not None and res.best.status is Status.OK and res.best.recipe.until is None
    dead = {c.recipe for c in failed if c.recipe.until is not None}
    for c in res.history:  # nothing grows out of a failed preview (multi-fidelity: not promoted)
        assert not any(c.recipe != d and c.recipe.shared_calls(d) == d.until and c.recipe.root == d.root
                       and (c.recipe.until or 99) > d.until for d in dead)
