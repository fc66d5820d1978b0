"""End to end on the embedded digits testbed: the demo command, its summary and report."""

import json

import pytest

from eacps.commands.cli import main


def test_demo_on_the_digits_testbed(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--tasks", "3", "--quiet"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["budget"] == 20 and summary["n_tasks"] == 3
    assert list(summary["strategies"]) == ["eacps", "eacps-pcn", "best-of-n"]
    for s in summary["strategies"].values():
        lo, hi = s["ci95"]
        assert lo <= s["mean_best"] <= hi
        assert s["mean_best"] > summary["prior_mean"]  # 20 candidates beat one fixed seed on average
        assert 0 <= s["mean_best"] <= 65  # U = 1.0 c + 4.0 r + 1.5 i, each in [0, 10]
    # stage 1 of both EACPS variants reuses best-of-N's first 8 seeds: 20 + 2 x 12 new candidates per task
    assert summary["generated"] == 3 * (1 + 20 + 12 + 12)
    html = (out / "report.html").read_text()
    assert html.count("<img") >= 3 * 4 and "best so far" in html.lower()
    assert "eacps-pcn" in printed
    # rerunning resumes: nothing is generated again, the summary is identical
    assert main(["demo", "--out", str(out), "--tasks", "3", "--quiet"]) == 0
    again = json.loads((out / "summary.json").read_text())
    assert again["generated"] == 0
    assert again["strategies"] == summary["strategies"]


@pytest.mark.parametrize("strategy", ["eacps", "best-of-n", "zero-order"])
def test_same_config_and_seed_give_identical_results_on_digits(tmp_path, strategy):
    import eacps_digits

    from eacps import search
    from eacps.commands.demo import digits_potential  # the digits preset's potential, through the registry
    from eacps.config import create

    task = eacps_digits.tasks(1)[0]

    def run():
        r = search(task, generator=create("generator", "digits"), potential=digits_potential(), strategy=strategy,
                   budget=12 if strategy != "eacps" else 20, seed=7, batch_size=5)
        return [(c.recipe.key, c.status.value, c.potential, c.scores) for c in r.history], r.best.recipe

    a, b = run(), run()
    assert a == b
    # the winner regenerates exactly from its recipe
    gen = create("generator", "digits")
    img1 = gen.generate([a[1]], task)[0].image
    img2 = gen.generate([a[1]], task)[0].image
    assert (img1 == img2).all()


def test_hook_register_demo_presets(tmp_path, toy_plugin):
    """The demo finds its generator, scorers and tasks through a registered preset (no plugin import)."""
    from eacps import hookimpl, plugins
    from eacps.commands.demo import get_preset, run_demo
    from eacps.config import ConfigError
    from eacps.plugins import DemoPreset

    assert get_preset().name == "digits" and get_preset("digits").tasks == "digits"  # eacps-digits registers it
    toy = DemoPreset(name="a-toy", generator="toy", tasks="toy",
                     criteria={"realism": ("toy-pixel", 4.0), "consistency": ("toy-mean", 1.0)}, title="toy demo")

    class Plugin:
        @staticmethod
        @hookimpl
        def register_demo_presets(register):
            register(toy)

    plugins.register_plugin(Plugin)
    try:
        assert get_preset() is toy  # first by name
        summary = run_demo(tmp_path / "d", n_tasks=2, budget=8, batch_size=4, progress=False, echo=lambda *a: None)
        with pytest.raises(ConfigError, match="--preset: unknown demo 'nope'; known: a-toy, digits"):
            get_preset("nope")
    finally:
        plugins.unregister_plugin(Plugin)
    assert summary["n_tasks"] == 2 and set(summary["strategies"]) == {"eacps", "eacps-pcn", "best-of-n"}
    assert "toy demo" in (tmp_path / "d" / "report.html").read_text()
