"""Promise 17: what no config field may hold is refused in one line naming the field, exit code 2, before any
compute. Every number of the documented example config set to nan, inf or -inf, every integer set to true, and
every string set to an API key or a URL with credentials: each refused; a key is never echoed back."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

from configs import edit, leaves, write

from eacps.cli import main

EXAMPLE = Path(__file__).parents[1] / "examples" / "digits.toml"
KEY = "sk-CANARYabcdefghijklmnop0123456789"
URL = "https://user:CANARYs3cret@judge.example/v1"


def _refused(tmp_path: Path, cfg: dict, field: str, capsys) -> str:
    out = tmp_path / "run"
    assert main(["run", str(write(tmp_path / "c.toml", cfg)), "--out", str(out), "--quiet"]) == 2, field
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"eacps: error: {field}: ") and "Traceback" not in err, err
    assert not out.exists()
    return err


def test_non_finite_numbers_and_booleans(tmp_path, capsys, figures):
    base = tomllib.loads(EXAMPLE.read_text())
    numbers = [(p, v) for p, v in leaves(base) if isinstance(v, int | float) and not isinstance(v, bool)]
    assert len(numbers) >= 8
    refused = 0
    for path, value in numbers:
        for bad in (math.nan, math.inf, -math.inf):
            assert "finite number" in _refused(tmp_path, edit(base, path, bad), path, capsys)
            refused += 1
        if isinstance(value, int) and ".extra." not in path:  # extra is the plugin's free-form table
            assert "not a boolean" in _refused(tmp_path, edit(base, path, True), path, capsys)
            refused += 1
    figures("17-config-values", numeric_fields=len(numbers), non_finite_or_bool_refused=refused)


def test_keys_in_any_string_field(tmp_path, capsys, figures):
    base = tomllib.loads(EXAMPLE.read_text())
    strings = [p for p, v in leaves(base) if isinstance(v, str)]
    assert len(strings) >= 6
    for path in strings:
        for secret in (KEY, URL):
            err = _refused(tmp_path, edit(base, path, secret), path, capsys)
            assert "CANARY" not in err and "environment variable" in err, err
    figures("17-config-values", string_fields=len(strings), secrets_refused=2 * len(strings), echoed=0)
