"""Start-up time of the command line: ``eacps --help`` (and ``eacps plugins``) against ``python -c pass``.

Every command starts by building the plugin registry; plugins register by reference, so listing them imports
no model library (torch, diffusers, nevergrad...). Runs are interleaved (baseline, --help, plugins, baseline,
...) so machine noise hits all alike; prints the median wall time of each and the ratio to the baseline.

    python benchmarks/startup.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

EACPS = str(Path(sys.executable).with_name("eacps"))
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "eacps --help": [EACPS, "--help"],
    "eacps plugins": [EACPS, "plugins"],
}


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    times: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for cmd in COMMANDS.values():  # one warm-up each (page cache, .pyc files)
        wall(cmd)
    for _ in range(args.repeats):
        for name, cmd in COMMANDS.items():
            times[name].append(wall(cmd))
    base = statistics.median(times["python -c pass"])
    print(f"{'command':<16} {'median s':>9} {'min s':>7} {'x python -c pass':>17}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<16} {med:>9.3f} {min(ts):>7.3f} {med / base:>16.1f}x")


if __name__ == "__main__":
    main()
