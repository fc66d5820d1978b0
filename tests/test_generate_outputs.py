"""``eacps generate``'s output files (issue 23): every path checked before the search, written atomically in
the format its suffix names, and a finished search never thrown away without printing its winner."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import eacps.api
from eacps.commands.cli import main
from eacps.store import best_of, read_only


def _searched(monkeypatch) -> list[int]:
    """Count the searches run_generate starts (a refusal must come before any)."""
    calls: list[int] = []
    real = eacps.api.run_config

    def spy(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(eacps.api, "run_config", spy)
    return calls


@pytest.mark.parametrize(
    "opts, names",
    [
        (["-o", "folder"], "--output: folder is a directory"),
        (["-o", "folder/."], "--output: folder/. is a directory"),
        (["-o", "folder/"], "--output: folder/ is a directory"),
        (["-o", ""], "--output: an empty path"),
        (["-o", "best.jpgx"], "--output: best.jpgx: unknown suffix '.jpgx'; allowed: .png, .jpg, .jpeg"),
        (["-o", "best"], "--output: best: unknown suffix '(none)'"),
        (["-o", "missing/best.png"], "--output: folder missing does not exist"),
        (["-o", "afile/best.png"], "--output: afile is not a folder"),
        (["--save-config", "missing/g.toml"], "--save-config: folder missing does not exist"),
        (["--save-config", "folder"], "--save-config: folder is a directory"),
        (["--save-config", "best.png"], "--save-config: best.png: unknown suffix '.png'; allowed: .toml"),
        (["-o", "same.toml", "--save-config", "same.toml"], "--output: same.toml: unknown suffix"),
    ],
)
def test_bad_output_paths_are_refused_before_the_search(tmp_path, capsys, monkeypatch, opts, names):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_text("x")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    calls = _searched(monkeypatch)
    rc = main(["generate", "3", "--model", "digits", "--budget", "8", "--quiet", *opts])
    out, err = capsys.readouterr()
    assert rc == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith(f"eacps: error: {names}"), err
    assert not calls  # refused before the search
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written (not even a probe)


def test_save_config_equal_to_output_is_refused(tmp_path, monkeypatch):
    """Even where the suffixes would allow it (the checks are also a library function)."""
    from eacps.commands.generate import CONFIG_SUFFIXES, GenerateRequest, check_outputs
    from eacps.config import ConfigError

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(CONFIG_SUFFIXES, ".png", "TOML")
    with pytest.raises(ConfigError, match=r"^--save-config: ./best.png is also --output"):
        check_outputs(GenerateRequest("3", "digits", output="best.png", save_config="./best.png"))


def test_an_unwritable_output_folder_is_refused_before_the_search(tmp_path, capsys, monkeypatch):
    """The folder's writability is probed up front (a real write; permission bits do not stop root)."""
    import errno

    import eacps.commands.generate as gen

    monkeypatch.chdir(tmp_path)

    def read_only_fs(path):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(gen, "_temp_beside", read_only_fs)
    calls = _searched(monkeypatch)
    rc = main(["generate", "3", "--model", "digits", "--budget", "8", "--quiet", "--save-config", "g.toml"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("eacps: error: --output: cannot write .: read-only filesystem"), err
    assert not calls


def test_odd_prompts_are_one_line_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for prompt in ("²", "٣x", "", "\x1b[2J"):  # a digit int() refuses, a mixed string, empty, an escape sequence
        rc = main(["generate", prompt, "--model", "digits", "--budget", "8", "--quiet"])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and err.startswith("eacps: error: PROMPT: model 'digits' has no "
                                                                   "task for"), (prompt, err)
    assert list(tmp_path.iterdir()) == []


def test_jpeg_suffix_writes_jpeg_and_png_is_the_stored_image(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "best.png").write_bytes(b"an older file, replaced whole")
    assert main(["generate", "3", "--model", "digits", "--budget", "8", "--quiet", "-o", "best.JPG",
                 "--run-dir", "run"]) == 0
    assert main(["generate", "3", "--model", "digits", "--budget", "8", "--quiet", "-o", "best.png",
                 "--run-dir", "run"]) == 0
    capsys.readouterr()
    with Image.open("best.JPG") as jpg, Image.open("best.png") as png:
        assert (jpg.format, png.format) == ("JPEG", "PNG")
        a, b = np.asarray(jpg, dtype=np.int16), np.asarray(png, dtype=np.int16)
    assert a.shape == b.shape and np.abs(a - b).mean() < 12  # the same winner, lossy
    ro = read_only(tmp_path / "run")
    try:
        best = best_of([c for c in ro.candidates() if c.role == "search"])  # previews are never the winner
    finally:
        ro.close()
    assert (tmp_path / "best.png").read_bytes() == (tmp_path / "run" / best.image_path).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.JPG", "best.png", "run"]  # no temporary file left


def test_a_write_failing_after_the_search_prints_the_winner_and_keeps_the_store(tmp_path, capsys, monkeypatch):
    """The output folder disappears during the search: the winner is still printed, the error names the option
    and the kept run directory, which holds every candidate."""
    import shutil

    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    real = eacps.api.run_config

    def search_then_lose_the_folder(*a, **kw):
        run = real(*a, **kw)
        shutil.rmtree(tmp_path / "out")
        return run

    monkeypatch.setattr(eacps.api, "run_config", search_then_lose_the_folder)
    rc = main(["generate", "3", "--model", "digits", "--budget", "8", "--strategy", "best-of-n", "--quiet",
               "-o", "out/best.png"])  # best-of-n: 8 rows, one per candidate (tree-search stores previews too)
    out, err = capsys.readouterr()
    assert rc == 1
    assert out.startswith("best potential ") and "recipe: " in out and "image:" not in out
    assert err.count("\n") == 1 and err.startswith("eacps: error: --output: cannot write"), err
    kept = err.split("the run is kept in ", 1)[1].split(" (eacps show", 1)[0]
    ro = read_only(kept)
    try:
        assert len([c for c in ro.candidates() if c.role == "search"]) == 8
    finally:
        ro.close()
    shutil.rmtree(kept.removesuffix("/run"))
