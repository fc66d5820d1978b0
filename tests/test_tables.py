"""Plain aligned tables of the command line, with stored strings printed escaped."""

from __future__ import annotations

import pytest

from eacps.tables import format_table, gap_text, multiplier_text, printable


def test_columns_are_padded_numbers_right_aligned_none_as_dash():
    text = format_table(["strategy", "steps", "note"], [["eacps", 200, "ok"], ["best-of-n", 20, None]])
    assert text.splitlines() == ["strategy   steps  note", "eacps        200    ok", "best-of-n     20     -"]
    last = format_table(["a", "b"], [["x", "long text"], ["yy", "t"]], last_left=True)
    assert last.splitlines() == ["a   b", "x   long text", "yy  t"]  # never padded at the end of a line
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        format_table(["a", "b"], [["x"]])


def test_control_and_bidi_characters_are_escaped_newlines_kept():
    assert printable("plain text") == "plain text"
    assert printable("a\x1b[2Jb\x07\u202ec\nd\te") == "a\\x1b[2Jb\\x07\\u202ec\nd\te"


def test_multiplier_and_gap_texts():
    assert multiplier_text({"multiplier": 2.111, "bound": "=", "ci95": [1.59, None]}) == "2.11x [1.59, >pool]"
    assert multiplier_text({"multiplier": 1.0, "bound": "<="}) == "<=1.00x"
    assert multiplier_text({"multiplier": 9.0, "bound": ">"}) == ">pool"
    assert multiplier_text(None) == "-"
    assert gap_text({"fraction": 0.421, "ci95": [0.35, float("nan")]}) == "0.42 [0.35, -]"
    assert gap_text(None) == "-"
