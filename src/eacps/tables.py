"""The one table helper of the command line and the text summaries: plain aligned columns.

Plain text on purpose: the output of ``eacps show`` is read in terminals, logs and CI transcripts alike,
so it is never wrapped to a terminal's width or drawn with box characters, and a long search id stays on
one line (``grep``-able).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any


def printable(text: str) -> str:
    """``text`` safe to print to a terminal: control characters (ESC, BEL, C1 controls, DEL; newlines and tabs
    kept) and invisible format characters (bidirectional overrides) are shown escaped (``\\x1b``, ``\\u202e``),
    so a stored string (a condition id, a reason) cannot clear the screen, set the window title or reorder text."""
    if text.isprintable():
        return text
    return "".join(ch if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf")
                   else (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}") for ch in text)


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]], *, left: int = 1,
                 last_left: bool = False) -> str:
    """Columns padded to their widest cell; the first ``left`` columns are left-aligned, the others
    right-aligned (numbers), the last one left-aligned too with ``last_left`` (text of any length, never padded).
    ``None`` cells print as ``-``."""
    cells = [[str(c) for c in header]] + [["-" if c is None else str(c) for c in r] for r in rows]
    n = len(cells[0])
    if any(len(r) != n for r in cells):
        raise ValueError(f"every row needs {n} cells")
    widths = [max(len(r[i]) for r in cells) for i in range(n)]
    lines = []
    for r in cells:
        parts = [c.ljust(w) if i < left or (last_left and i == n - 1) else c.rjust(w)
                 for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def multiplier_text(m: Mapping[str, Any] | None, *, times: str = "x", at_most: str = "<=") -> str:
    """A compute multiplier with its CI, ``'2.11x [1.59, 2.91]'`` (``eacps compare`` and the report, which
    passes its own glyphs): ``'>pool'`` where the reference pool cannot resolve N*, ``at_most`` at N* = 1."""
    if not m:
        return "-"
    x = ">pool" if m.get("bound") == ">" else f"{at_most if m.get('bound') == '<=' else ''}{m['multiplier']:.2f}{times}"
    if "ci95" not in m:
        return x
    lo, hi = m["ci95"]
    return f"{x} [{'>pool' if lo is None else f'{lo:.2f}'}, {'>pool' if hi is None else f'{hi:.2f}'}]"


def gap_text(g: Mapping[str, Any] | None) -> str:
    """The fraction of the gap to a known optimum a strategy closes, with its CI, ``'0.42 [0.35, 0.50]'``
    (``eacps compare`` and the report); ``-`` when there is none."""
    if not g:
        return "-"
    lo, hi = (f"{v:.2f}" if v is not None and v == v else "-" for v in g["ci95"])
    return f"{g['fraction']:.2f} [{lo}, {hi}]"
