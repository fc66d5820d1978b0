"""Reading a large tree-search store: parent links, ``serve``'s state, ``show --tree``, ``report`` and ``serve``
under many concurrent polls.

1. Parent links of tree-search histories of growing size: the indexed ``PathLedger`` beside the pairwise rule it
   replaced (every earlier path compared with ``Recipe.shared_calls``), same links checked, times side by side.
2. A real tree-search run of about 2000 candidates on the toy generator of ``tests/toy.py`` (few roots, deep
   trees), then: ``state()`` (min of 5), ``eacps show --tree``, ``eacps report``, and ``serve`` answering
   300 GETs 50 at a time (slowest and median answer, how many times the store was read).

    python benchmarks/store_scale.py [--sizes 250,500,1000,2000] [--budget 600] [--no-pairwise-above 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from eacps.api import make_strategy
from eacps.recipe import Recipe
from eacps.testing import fake_objective
from eacps.trees import parent_links

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the toy generator


def tree_history(nodes: int) -> list[Recipe]:
    """The recipes a tree search asks (fake objective) until it has asked ``nodes`` of them."""
    s = make_strategy("tree-search", {"root_width": 0.01}, budget=max(4, nodes // 3), seed=0).bind(10)
    s.optimize(fake_objective(), batch_size=16)
    return [r.recipe for r in s.history][:nodes]


def pairwise(recipes: list[Recipe]) -> list[int | None]:
    out = []
    for i, r in enumerate(recipes):
        best, key = None, (0, False, -1)
        for j in range(i):
            n = r.shared_calls(recipes[j])
            k = (n, n == recipes[j].until, j)
            if n > 0 and k > key:
                best, key = j, k
        out.append(best)
    return out


def links_table(sizes: list[int], pairwise_above: int) -> None:
    print("nodes  indexed (s)  pairwise (s)  ratio")
    for n in sizes:
        rs = tree_history(n)
        t0 = time.perf_counter()
        fast = parent_links(rs)
        t_fast = time.perf_counter() - t0
        if len(rs) > pairwise_above:
            print(f"{len(rs):5d}  {t_fast:11.4f}  {'-':>12}  -")
            continue
        t0 = time.perf_counter()
        slow = pairwise(rs)
        t_slow = time.perf_counter() - t0
        assert fast == slow, "the indexed ledger disagrees with the pairwise rule"
        print(f"{len(rs):5d}  {t_fast:11.4f}  {t_slow:12.3f}  {t_slow / max(t_fast, 1e-9):.0f}x")


def build(run_dir: Path, budget: int) -> tuple[int, float]:
    import toy

    import eacps
    from eacps import Condition
    from eacps.potential import Criterion, Potential

    gen = toy.ToyGenerator(toy.ToyGeneratorParams(stepping=True))
    pot = Potential([Criterion("realism", toy.ToyScorer(), 4.0), Criterion("consistency", toy.ToyMeanScorer(), 1.0)])
    t0 = time.perf_counter()
    res = eacps.search(Condition("a", prompt="x"), generator=gen, potential=pot, strategy="tree-search",
                       params={"root_width": 0.01}, budget=budget, batch_size=64, run_dir=run_dir)
    return len(res.history) + 1, time.perf_counter() - t0


def timed(fn) -> float:
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        fn()
    return time.perf_counter() - t0


def serve_load(run_dir: Path, requests: int = 300, concurrent: int = 50) -> tuple[float, float, int, set[int]]:
    from eacps.analysis.serve import make_server

    server = make_server(run_dir, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api/state"

    def get(_: int) -> tuple[float, int]:
        t0 = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as r:
            r.read()
            return time.perf_counter() - t0, r.status

    try:
        with ThreadPoolExecutor(concurrent) as pool:
            answers = list(pool.map(get, range(requests)))
    finally:
        server.shutdown()
        server.server_close()
    times = [t for t, _ in answers]
    return max(times), statistics.median(times), server.RequestHandlerClass.cache.computed, {c for _, c in answers}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="250,500,1000,2000", help="tree-search nodes for the parent-link table")
    ap.add_argument("--budget", type=int, default=600, help="tree-search budget of the store (600: ~2000 nodes)")
    ap.add_argument("--no-pairwise-above", type=int, default=2000, help="skip the pairwise rule above this size")
    args = ap.parse_args()
    links_table([int(x) for x in args.sizes.split(",")], args.no_pairwise_above)

    from eacps.analysis.serve import state
    from eacps.commands.cli import main as cli

    with tempfile.TemporaryDirectory() as d:
        run_dir = Path(d) / "run"
        n, secs = build(run_dir, args.budget)
        print(f"\nstore: {n} candidates (tree-search, toy generator), built in {secs:.1f} s")
        print(f"state()          {min(timed(lambda: state(run_dir)) for _ in range(5)):.3f} s (min of 5)")
        print(f"show --tree      {timed(lambda: cli(['show', str(run_dir), '--tree'])):.3f} s")
        print(f"report           {timed(lambda: cli(['report', str(run_dir), '--output', d + '/r.html'])):.3f} s")
        slowest, median, reads, codes = serve_load(run_dir)
        print(f"serve 300 GETs of /api/state, 50 at a time: slowest {slowest:.3f} s, median {median:.3f} s, "
              f"store read {reads}x, status codes {sorted(codes)}")


if __name__ == "__main__":
    main()
