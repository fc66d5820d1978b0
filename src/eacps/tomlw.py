"""Writing configs as TOML (Python reads TOML with ``tomllib`` but ships no writer).

One writer for every config eacps writes: ``eacps generate``'s saved configs, the benchmark scripts' compare
configs and the tests' configs built as data. Top-level tables become ``[section]`` headers, top-level lists of tables
``[[section]]``, the tables of a table of tables (``potential.criteria``) headers of their own, and the rest is
written inline, so the output reads like a hand-written config and ``tomllib.loads(dumps(cfg)) == cfg`` for any
JSON-like ``cfg`` whose keys are strings.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any


def value(v: Any) -> str:
    """One TOML value: inline tables and arrays; ``nan``/``inf`` spelled as TOML spells them."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):  # a JSON string is a TOML basic string once DEL (raw in JSON) is escaped too
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, list | tuple):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + " }" if v else "{}"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def key(k: Any) -> str:
    """A bare key where TOML allows one, else a quoted one."""
    k = str(k)
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else value(k)


def _is_table_list(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _is_table_of_tables(v: Any) -> bool:
    return isinstance(v, dict) and bool(v) and all(isinstance(x, dict) for x in v.values())


def _table(path: str, table: dict[str, Any], array: bool = False) -> list[str]:
    """``table`` under header ``path``: its values inline, except tables of tables (``criteria``), whose
    tables get headers of their own (``[potential.criteria.realism]``)."""
    plain = {k: v for k, v in table.items() if not _is_table_of_tables(v)}
    out = []
    if plain or array or len(plain) == len(table):
        out += ["", f"[[{path}]]" if array else f"[{path}]", *(f"{key(k)} = {value(v)}" for k, v in plain.items())]
    for k, v in table.items():
        if k not in plain:
            out += [x for name, t in v.items() for x in _table(f"{path}.{key(k)}.{key(name)}", t)]
    return out


def dumps(config: dict[str, Any], header: str = "") -> str:
    """``config`` as TOML text, ``header`` as leading ``#`` comment lines: top-level tables as ``[section]``,
    lists of tables as ``[[section]]``."""
    out = [f"# {line}" for line in header.splitlines()]
    top = {k: v for k, v in config.items() if not isinstance(v, dict) and not _is_table_list(v)}
    out += [f"{key(k)} = {value(v)}" for k, v in top.items()]
    for k, v in config.items():
        if k not in top:
            out += [x for t in v for x in _table(key(k), t, array=True)] if isinstance(v, list) else _table(key(k), v)
    return "\n".join(out).lstrip("\n") + "\n"
