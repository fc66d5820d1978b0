"""Every notebook in notebooks/ executes top to bottom with nbclient, and is committed without outputs.

The kernel is this interpreter (a kernel spec written into a temporary JUPYTER_PATH, which takes precedence
over any user-level ``python3`` kernel), so the notebooks see exactly the packages the tests see.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TIMEOUT_S = 180  # per cell; each notebook takes seconds on two cores


def test_the_three_notebooks_exist():
    names = [p.name for p in NOTEBOOKS]
    assert names == ["01_quickstart.ipynb", "02_comparing_strategies.ipynb", "03_scorer_plugin.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear the outputs"


@pytest.fixture
def kernel_env(tmp_path, monkeypatch):
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (eacps tests)",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path


def execute(path: Path, cwd: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def text_of(nb: nbformat.NotebookNode) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", "") or o.get("data", {}).get("text/plain", ""))
    return "\n".join(out)


@pytest.mark.slow
def test_01_quickstart(kernel_env):
    nb = execute(ROOT / "notebooks" / "01_quickstart.ipynb", kernel_env)
    text = text_of(nb)
    assert "max |difference|: 0.0" in text  # the winner regenerated from its recipe is the same image
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the candidate strip was not displayed"


@pytest.mark.slow
def test_02_comparing_strategies(kernel_env):
    nb = execute(ROOT / "notebooks" / "02_comparing_strategies.ipynb", kernel_env)
    svgs = [o for c in nb.cells for o in c.get("outputs", []) if "image/svg+xml" in o.get("data", {})]
    assert svgs and re.search(r"id=.scaling.", svgs[0]["data"]["image/svg+xml"]), "no scaling plot displayed"
    assert "generated on the second call: 0" in text_of(nb)


def _installed(dist: str) -> bool:
    return subprocess.run([sys.executable, "-m", "pip", "show", "-q", dist], capture_output=True).returncode == 0


@pytest.mark.slow
def test_03_scorer_plugin(kernel_env):
    assert not _installed("eacps-contrast")
    try:
        nb = execute(ROOT / "notebooks" / "03_scorer_plugin.ipynb", kernel_env)
    finally:  # never leave the notebook's plugin installed in the environment
        if _installed("eacps-contrast"):
            subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", "eacps-contrast"], check=False)
    text = text_of(nb)
    assert "contrast from eacps-contrast" in text
    assert "potential.criteria.contrast.params.gian: unknown parameter; allowed: gain" in text
    assert "uninstalled" in text and not _installed("eacps-contrast")
