"""eacps report: a self-contained HTML page of a run store, written where asked or refused in one line."""

from __future__ import annotations

import base64
import re

import numpy as np
from configs import toy, write
from runs import candidates, one_line_error, run_config

from eacps import Recipe
from eacps.analysis.report import budget_of, context, fit_ticks, log_ticks, reproduction, write_report
from eacps.commands.cli import main
from eacps.store import load_png, quantize


# -- --output (moved from tests/test_cli_defects.py) -----------------------------------------------------------------
def test_report_output_in_a_missing_folder_is_one_line(tmp_path, toy_plugin, capsys):
    out = tmp_path / "run"
    assert run_config(write(tmp_path / "c.toml", toy(budget=4)), out) == 0
    capsys.readouterr()
    assert main(["report", str(out), "--output", str(tmp_path / "no" / "such" / "r.html")]) == 2
    assert "--output: folder" in one_line_error(capsys)
    assert main(["report", str(out), "--output", str(tmp_path)]) == 2  # a directory
    assert "report: Invalid value for '--output'" in one_line_error(capsys)


# -- the page of a toy run ---------------------------------------------------------------------------------------------
def test_a_report_embeds_the_stored_images_and_each_winners_regeneration_code(tmp_path, toy_plugin):
    out = tmp_path / "run"
    assert run_config(write(tmp_path / "c.toml", toy(budget=6, strategy="best-of-n")), out) == 0
    path = write_report(out)
    assert path == out / "report.html"
    page = path.read_text()
    ctx = context(out, "t")
    winners = [c for c in candidates(out, role="search") if c.potential == max(
        x.potential for x in candidates(out, search=c.search))]
    assert {w.condition for w in winners} == {"a", "b"}
    for w in winners:
        png = base64.b64encode((out / w.image_path).read_bytes()).decode()
        assert f"data:image/png;base64,{png}" in page  # the stored PNG itself, embedded
    assert not re.search(r"""(?:src|href)=["'](?:https?:)?//""", page)  # self-contained: nothing fetched
    # every recipe entry carries code that regenerates its candidate exactly
    entries = {e["recipe"]: e for e in ctx["recipes"]}
    for w in winners:
        code = entries[w.recipe.key]["snippet"]
        scope: dict = {}
        exec(code, scope)
        assert np.array_equal(quantize(scope["image"]), load_png(out / w.image_path))


def test_report_output_names_the_file(tmp_path, toy_plugin):
    out = tmp_path / "run"
    assert run_config(write(tmp_path / "c.toml", toy(budget=4)), out) == 0
    (out / "report.html").unlink()  # eacps run writes one
    assert main(["report", str(out), "--output", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_text().lstrip().lower().startswith("<!doctype html")
    assert not (out / "report.html").exists()


def test_budget_of_reads_the_budget_in_a_search_id():
    assert budget_of("cond/eacps/b20/s0") == 20
    assert budget_of("cond/eacps/B8/r1") == 8
    assert budget_of("cond/pool/N128") == 128
    assert budget_of("cond/eacps/s0") is None


def test_tick_labels_never_touch_and_keep_both_ends():
    ticks = [(float(x), str(x)) for x in range(0, 100, 3)]
    kept = fit_ticks(ticks, gap=6, size=10)
    assert kept[0] == ticks[0] and kept[-1] == ticks[-1]
    widths = [0.62 * 10 * len(t) + 2 for _, t in kept]
    for (x0, _), w0, (x1, _), w1 in zip(kept, widths, kept[1:], widths[1:], strict=False):
        assert x1 - w1 / 2 >= x0 + w0 / 2 + 6
    assert log_ticks(3, 120) == [3, 5, 10, 20, 50, 100, 120]


def test_plain_diffusers_lines_only_for_a_seed_only_diffusers_recipe():
    gen = {"name": "diffusers", "params": {"model": "some/model", "steps": 4}}
    lines = reproduction(gen, "a cat", Recipe.from_seed(7))
    assert lines[1].endswith("generator=torch.Generator(\"cpu\").manual_seed(7), num_inference_steps=4).images[0]")
    assert reproduction({"name": "toy"}, "a cat", Recipe.from_seed(7)) == []
    assert reproduction(gen, "a cat", Recipe.from_seed(7).pcn(0.5, 1)) == []
