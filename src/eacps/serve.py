"""``eacps serve RUN_DIR``: a live, read-only page of a run, refreshing as batches land.

The page (``eacps/static/serve.html``) polls ``/api/state``, a small JSON summary of the store read through a
read-only SQLite connection: best-so-far curves per search, the current best image per condition, the
newest candidates, and the trees of trajectory searches (parent links read back from their path recipes).
Images are served from ``RUN_DIR/images`` only. Nothing is ever written; the server binds
to 127.0.0.1 unless told otherwise. stdlib ``http.server``: no dependencies.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from eacps.config import ConfigError
from eacps.report import trees
from eacps.store import Candidate, best_so_far, eligible, read_only

ROWS = 200  # newest candidates in the table


def _row(c: Candidate) -> dict[str, Any]:
    return {"id": c.id, "search": c.search, "seq": c.seq, "role": c.role, "condition": c.condition,
            "strategy": c.strategy, "status": str(c.status), "potential": c.potential, "scores": c.scores,
            "recipe": c.recipe.key, "steps": c.steps, "reason": c.reason,
            "image": None if c.image_path is None else f"/{c.image_path}"}


def _curves(cands: list[Candidate]) -> list[dict[str, Any]]:
    by: dict[str, list[Candidate]] = defaultdict(list)
    for c in cands:
        if c.role == "search":
            by[c.search].append(c)
    out = []
    for sid, cs in by.items():
        cs.sort(key=lambda c: c.seq)
        curve = best_so_far(cs)
        out.append({"search": sid, "condition": cs[0].condition, "strategy": cs[0].strategy, "n": len(cs),
                    "best": curve[-1], "curve": curve})
    return out


def _best_per_condition(cands: list[Candidate]) -> list[dict[str, Any]]:
    best: dict[str, Candidate] = {}
    for c in cands:
        if eligible(c) and (c.condition not in best or c.potential > best[c.condition].potential):
            best[c.condition] = c
    return [_row(c) for _, c in sorted(best.items())]


def state(run_dir: Path) -> dict[str, Any]:
    """The JSON the page polls: everything is read fresh from the store."""
    store = read_only(run_dir)
    try:
        cands = store.candidates()
    finally:
        store.close()
    criteria = sorted({k for c in cands for k in c.scores})
    newest = sorted(cands, key=lambda c: c.id or 0, reverse=True)[:ROWS]
    return {"run_dir": run_dir.name, "candidates": len(cands), "last_id": max((c.id or 0 for c in cands), default=0),
            "failed": sum(str(c.status) != "OK" for c in cands), "time": time.time(), "criteria": criteria,
            "searches": _curves(cands), "best": _best_per_condition(cands), "rows": [_row(c) for c in newest],
            "trees": trees(cands)}


def page() -> bytes:
    return resources.files("eacps").joinpath("static/serve.html").read_bytes()


class Handler(BaseHTTPRequestHandler):
    run_dir: Path  # set on the subclass made by ``make_server``

    def log_message(self, format: str, *args: Any) -> None:  # quiet: no line per poll
        pass

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            return self._send(200, page(), "text/html; charset=utf-8")
        if path == "/api/state":
            try:
                body = json.dumps(state(self.run_dir)).encode()
            except (sqlite3.Error, FileNotFoundError) as exc:  # a store mid-checkpoint: the page retries
                return self._send(503, json.dumps({"error": str(exc)}).encode(), "application/json")
            return self._send(200, body, "application/json")
        if path.startswith("/images/") and path.endswith(".png"):
            images = (self.run_dir / "images").resolve()
            f = (self.run_dir / path.lstrip("/")).resolve()
            if f.parent == images and f.is_file():
                return self._send(200, f.read_bytes(), "image/png")
        self._send(404, b"not found", "text/plain")


def make_server(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """A server over ``run_dir``'s store (``ConfigError`` when there is none); call ``serve_forever``."""
    root = Path(run_dir)
    if not (root / "store.sqlite").is_file():
        raise ConfigError(f"RUN_DIR: no run store in {run_dir} (expected {root / 'store.sqlite'})")
    handler = type("RunHandler", (Handler,), {"run_dir": root})
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise ConfigError(f"--port: cannot listen on {host}:{port} ({exc.strerror or exc})") from None


def command() -> Any:
    """The ``eacps serve`` click command."""
    import click

    @click.command("serve", help="A live read-only page of RUN_DIR (best-so-far curves, the current best image per "
                   "condition, the newest candidates), refreshing as batches land; works while `eacps run` writes.")
    @click.argument("run_dir")
    @click.option("--port", type=int, default=8000, show_default=True, help="TCP port (0: any free port)")
    @click.option("--host", default="127.0.0.1", show_default=True, help="address to bind (0.0.0.0: every interface)")
    def serve(run_dir: str, port: int, host: str) -> int:
        try:
            server = make_server(run_dir, host, port)
        except ConfigError as exc:
            click.echo(f"eacps: error: {exc}", err=True)
            return 2
        h, p = server.server_address[:2]
        click.echo(f"serving {run_dir} at http://{h}:{p}/ (read-only; Ctrl-C to stop)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
        return 0

    return serve
