"""The floor: how long polars takes just to read the daily run's landing files, so the daily
run can be reported as a multiple of reading its input.

    uv run python benchmarks/floor.py [--users 10000] [--scale 18] [--seed 4343] [--times 1]

Reads every landing file of the day that ``benchmarks/daily.py`` runs (the same options give
the same cached day, made on first use by ``benchmarks/landing.py``) with ``polars.read_csv``,
all columns as text, the way the ingest's fast path reads them, and prints the best of three
wall times and the rows read.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import polars as pl
from landing import day_landing, options


def read_all(logs: Path) -> int:
    rows = 0
    for path in sorted(logs.rglob("*.csv*")):
        rows += pl.read_csv(path, infer_schema=False).height
    return rows


def floor_seconds(logs: Path, repeat: int = 3) -> tuple[float, int]:
    best, rows = float("inf"), 0
    for _ in range(repeat):
        t = time.perf_counter()
        rows = read_all(logs)
        best = min(best, time.perf_counter() - t)
    return best, rows


def main() -> None:
    args = options(argparse.ArgumentParser(description=__doc__.splitlines()[0])).parse_args()
    logs = day_landing(args.users, args.scale, args.seed, args.times)
    seconds, rows = floor_seconds(logs)
    print(f"landing files          {sum(1 for _ in logs.rglob('*.csv*'))}")
    print(f"rows read              {rows:,}")
    print(f"floor (best of three)  {seconds:.2f} s")


if __name__ == "__main__":
    main()
