"""The README's Python example runs as written (doc snippets are tests, as in nevergrad)."""

import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README shows the Python API"
    ns: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), ns)
    result, image = ns["result"], ns["image"]
    assert len(result.history) == 20 and result.best.potential == max(c.potential for c in result.history)
    assert abs(float(image.mean()) - float(result.best.image.mean())) < 2 / 255  # the winner, regenerated


def test_readme_commands_exist():
    from eacps.cli import commands as cli_commands

    commands = set(cli_commands())
    for cmd in re.findall(r"^eacps (\w+)", README.read_text(), re.M):
        assert cmd in commands, f"README mentions `eacps {cmd}`, which does not exist"
