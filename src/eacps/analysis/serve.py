"""``eacps serve RUN_DIR``: a live, read-only page of a run, refreshing as batches land.

The page (``eacps/static/serve.html``) polls ``/api/state``, a small JSON summary of the store read through a
read-only SQLite connection: best-so-far curves per search, the current best image per condition, the
newest candidates, and the trees of trajectory searches (parent links read back from their path recipes).
The summary is computed once per change of the store (``StateCache``: keyed on the store's and its WAL's
inode, size and mtime), so any number of pages polling cost one read per batch written. Images are served
from ``RUN_DIR/images`` only, by the store's own names. Nothing is ever written; the server binds to
127.0.0.1 unless told otherwise, answers only requests whose ``Host`` names that address (a page of another
site cannot reach it by DNS rebinding), and handles requests on a bounded pool of threads. stdlib
``http.server``: no dependencies.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sqlite3
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from eacps.analysis.report import POOL_SEARCH, SAMPLER_POOL_SEARCH, budget_of, trees
from eacps.config import ConfigError
from eacps.store import Candidate, StoreError, best_so_far, eligible, image_file, read_only

ROWS = 200  # newest candidates in the table


def _row(c: Candidate) -> dict[str, Any]:
    """A candidate of ``state()`` (read by ``Store.candidates``, whose ``image`` is None or a store image name)."""
    return {"id": c.id, "search": c.search, "seq": c.seq, "role": c.role, "condition": c.condition,
            "strategy": c.strategy, "status": str(c.status), "potential": c.potential, "scores": c.scores,
            "recipe": c.recipe.key, "steps": c.steps, "reason": c.reason,
            "image": None if c.image_path is None else f"/{c.image_path}"}  # same origin; validated when read


def by_search(cands: list[Candidate]) -> dict[str, list[Candidate]]:
    """Every search's candidates (role ``search``), in ask order (``seq``); searches in the order first met."""
    by: dict[str, list[Candidate]] = defaultdict(list)
    for c in cands:
        if c.role == "search":
            by[c.search].append(c)
    for cs in by.values():
        cs.sort(key=lambda c: c.seq)
    return dict(by)


def _curves(searches: dict[str, list[Candidate]]) -> list[dict[str, Any]]:
    out = []
    for sid, cs in searches.items():
        curve = best_so_far(cs)
        out.append({"search": sid, "condition": cs[0].condition, "strategy": cs[0].strategy, "n": len(cs),
                    "steps": sum(c.charge for c in cs), "best": curve[-1], "curve": curve})
    return out


def _best_per_condition(cands: list[Candidate]) -> list[dict[str, Any]]:
    best: dict[str, Candidate] = {}
    for c in cands:
        if eligible(c) and (c.condition not in best or c.potential > best[c.condition].potential):
            best[c.condition] = c
    return [_row(c) for _, c in sorted(best.items())]


def _kind(meta: dict[str, Any]) -> str:
    """What the store holds: a ``compare``, a ``landscape`` or a ``run`` (``eacps run``/``demo``)."""
    return "compare" if meta.get("compare") else "landscape" if meta.get("landscape") else "run"


def planned(meta: dict[str, Any], n_conditions: int) -> list[int]:
    """The budget of every search the store's command plans (compare: the reference pool and every contestant,
    budget and seed on the reported tasks; run: every [[searches]] entry on every condition). Same-sampler pools
    are not counted (how many there are is known only as they run)."""
    cmp = meta.get("compare")
    if isinstance(cmp, dict):
        p = cmp.get("protocol") or {}
        tasks = len(p.get(f"{p.get('reported', 'evaluation')}_tasks") or []) or n_conditions
        labels = len(meta.get("compare/contestants") or {}) or 1
        per_task = [int((p.get("pool") or {}).get("size") or 0)]
        per_task += [int(b) for b in cmp.get("budgets") or [] for _ in range(labels * int(cmp.get("repeats") or 1))]
        return [b for b in per_task if b] * tasks
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    searches = config.get("searches") or [config.get("search") or {}]
    n = len(config.get("conditions") or []) or n_conditions
    budgets = [s["budget"] for s in searches if isinstance(s, dict) and isinstance(s.get("budget"), int)]
    alloc = config.get("allocation")
    if isinstance(alloc, dict) and isinstance(alloc.get("total_budget"), int):  # one total over the conditions
        return [alloc["total_budget"]] * len(budgets)
    return budgets * n


def progress(meta: dict[str, Any], cands: list[Candidate], searches: dict[str, list[Candidate]],
             n_conditions: int) -> dict[str, Any]:
    """How far the command is, in best-of-N candidate equivalents (a search of budget B may charge B·T denoising
    steps; its candidates' charged steps / T is how much of that it spent), and its phase (the newest search).
    ``searches``: ``by_search(cands)``."""
    by = {sid: cs for sid, cs in searches.items() if SAMPLER_POOL_SEARCH not in sid}
    full = max((c.steps for c in cands if c.recipe.until is None and c.recipe.steps is None), default=1) or 1
    done = 0.0
    for sid, cs in by.items():
        spent = sum(c.charge for c in cs) / full
        b = budget_of(sid)
        done += min(spent, b) if b else spent
    total = float(sum(planned(meta, n_conditions)))
    newest = max((c for c in cands if c.role == "search"), key=lambda c: c.id or 0, default=None)
    phase = "starting" if newest is None else _phase(newest)
    if total and done >= total - 1e-9:
        phase = "finished"
    return {"done": round(done, 3), "total": total or None, "unit": "best-of-N candidate equivalents",
            "phase": phase, "searches": len(by)}


def _phase(c: Candidate) -> str:
    if POOL_SEARCH in c.search:
        return "reference pool (best-of-N)"
    if SAMPLER_POOL_SEARCH in c.search:
        return "same-sampler pools"
    b = budget_of(c.search)
    return f"{c.strategy or 'search'}" + (f", budget {b}" if b else "")


def state(run_dir: Path) -> dict[str, Any]:
    """The JSON the page polls, read fresh from the store (``StoreError``: one line, for a damaged store)."""
    store = read_only(run_dir)
    try:
        cands = store.candidates()
        meta = {k: store.get_meta(k) for k in ("compare", "compare/contestants", "landscape", "config")}
        n_conditions = len({c.condition for c in cands})
    finally:
        store.close()
    criteria = sorted({k for c in cands for k in c.scores})
    newest = sorted(cands, key=lambda c: c.id or 0, reverse=True)[:ROWS]
    kind = _kind(meta)
    searches = by_search(cands)
    return {"run_dir": run_dir.name, "kind": kind, "title": f"eacps {kind}: {run_dir.name}", "candidates": len(cands),
            "last_id": max((c.id or 0 for c in cands), default=0),
            "failed": sum(str(c.status) != "OK" for c in cands), "time": time.time(), "criteria": criteria,
            "searches": _curves(searches), "best": _best_per_condition(cands), "rows": [_row(c) for c in newest],
            "trees": trees(searches), "progress": progress(meta, cands, searches, n_conditions)}


def page() -> bytes:
    return resources.files("eacps").joinpath("static/serve.html").read_bytes()


def store_version(run_dir: Path) -> tuple:
    """What changes whenever the store does: inode, size and mtime of ``store.sqlite`` and of its WAL (a batch
    lands in the WAL; a checkpoint rewrites the store; a replaced store has another inode)."""
    out: list[tuple[int, int, int] | None] = []
    for name in ("store.sqlite", "store.sqlite-wal"):
        try:
            st = os.stat(run_dir / name)
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


class StateCache:
    """``/api/state`` computed once per store version: concurrent polls of an unchanged store share one read (the
    first computes it, the others wait for it). The body carries the time it is sent."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._lock = threading.Lock()
        self._version: tuple | None = None
        self._body = b""
        self.computed = 0  # states read from the store (for tests)

    def body(self) -> bytes:
        with self._lock:
            version = store_version(self.run_dir)  # before reading: a write meanwhile makes the next poll read again
            if version != self._version:
                data = state(self.run_dir)
                data.pop("time", None)
                self._body, self._version = json.dumps(data).encode(), version
                self.computed += 1
            body = self._body
        return b'{"time": %.3f, ' % time.time() + body[1:] if body != b"{}" else body


def allowed_hosts(host: str) -> frozenset[str] | None:
    """The names a request's ``Host`` may give for a server bound to ``host``; None: any IP address, ``localhost``
    or this machine's name (bound to every interface)."""
    name = host.strip("[]").lower()
    if name in ("", "0.0.0.0", "::"):
        return None
    loopback = name == "localhost" or _is_loopback(name)
    return frozenset({name} | ({"localhost", "127.0.0.1", "::1"} if loopback else set()))


def _is_loopback(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(header: str | None) -> str | None:
    """The host name of a ``Host`` header (``[::1]:8000`` -> ``::1``, ``Example.org.:80`` -> ``example.org``)."""
    if not header:
        return None
    h = header.strip().lower()
    if h.startswith("["):
        return h[1:h.index("]")] if "]" in h else None
    return h.rsplit(":", 1)[0].rstrip(".") if h.count(":") <= 1 else None


def host_ok(header: str | None, allowed: frozenset[str] | None, extra: frozenset[str] = frozenset()) -> bool:
    name = host_name(header)
    if name is None:
        return False
    if name in extra or (allowed is not None and name in allowed):
        return True
    if allowed is not None:
        return False
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return name in ("localhost", socket.gethostname().lower())


class Handler(BaseHTTPRequestHandler):
    run_dir: Path  # set on the subclass made by ``make_server``
    cache: StateCache
    hosts: frozenset[str] | None = None  # ``allowed_hosts`` of the bind address
    extra_hosts: frozenset[str] = frozenset()  # ``--allow-host``
    timeout = 20  # seconds a connection may take to send its request: a stalled client frees its worker

    def log_message(self, format: str, *args: Any) -> None:  # quiet: no line per poll
        pass

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if not host_ok(self.headers.get("Host"), self.hosts, self.extra_hosts):
            return self._send(421, b"misdirected request: the Host header does not name this server", "text/plain")
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            return self._send(200, page(), "text/html; charset=utf-8")
        if path == "/api/state":
            try:
                body = self.cache.body()
            except (sqlite3.Error, OSError, StoreError) as exc:  # mid-checkpoint, replaced, damaged: the page retries
                return self._send(503, json.dumps({"error": " ".join(str(exc).split())}).encode(), "application/json")
            return self._send(200, body, "application/json")
        try:
            f = image_file(self.run_dir, path.lstrip("/"))  # the store's own image names, inside images/, only
        except StoreError:
            f = None
        if f is not None and f.is_file():
            return self._send(200, f.read_bytes(), "image/png")
        self._send(404, b"not found", "text/plain")


class Server(HTTPServer):
    """An HTTP server answering on a fixed pool of worker threads (``workers``); connections beyond it wait in the
    listen queue and the pool's queue instead of starting one thread each."""

    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[Handler], workers: int = 16) -> None:
        super().__init__(address, handler)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="eacps-serve")

    def process_request(self, request: Any, client_address: Any) -> None:
        self._pool.submit(self._handle, request, client_address)

    def _handle(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line on stderr, not a traceback (a client that went away is not an error)."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError)):
            print(f"eacps serve: {client_address[0]}: {type(exc).__name__}: {exc}", file=sys.stderr)

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def make_server(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, *,
                allow_hosts: tuple[str, ...] = ()) -> Server:
    """A server over ``run_dir``'s store (``ConfigError`` when there is none); call ``serve_forever``."""
    root = Path(run_dir)
    if not (root / "store.sqlite").is_file():
        raise ConfigError(f"RUN_DIR: no run store in {run_dir} (expected {root / 'store.sqlite'})")
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port: must be between 0 and 65535, got {port}")
    handler = type("RunHandler", (Handler,), {"run_dir": root, "cache": StateCache(root), "hosts": allowed_hosts(host),
                                              "extra_hosts": frozenset(h.lower() for h in allow_hosts)})
    try:
        return Server((host, port), handler)
    except (OSError, OverflowError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"--host/--port: cannot listen on {host}:{port} ({why})") from None


def command() -> Any:
    """The ``eacps serve`` click command."""
    import click

    @click.command("serve", help="A live read-only page of RUN_DIR (best-so-far curves, the current best image per "
                   "condition, the newest candidates), refreshing as batches land; works while `eacps run` writes.")
    @click.argument("run_dir")
    @click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
                  help="TCP port (0: any free port)")
    @click.option("--host", default="127.0.0.1", show_default=True,
                  help="address to bind (0.0.0.0: every interface); requests must name it in their Host header "
                  "(localhost too for a loopback address; any IP or this machine's name for 0.0.0.0)")
    @click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
                  help="another host name the page may be reached by (a DNS name of this machine); repeatable")
    def serve(run_dir: str, port: int, host: str, allow_hosts: tuple[str, ...]) -> int:
        try:
            server = make_server(run_dir, host, port, allow_hosts=allow_hosts)
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
