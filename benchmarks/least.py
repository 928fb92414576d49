"""(e) The least a storing ingest does: how far above the floor a run must be before it checks
anything, so the daily run's multiple of the floor can be read against it.

    uv run python benchmarks/least.py [--users 10000] [--scale 18] [--seed 4343] [--times 1]

Takes the landing files of the day ``benchmarks/daily.py`` runs, two at a time as the ingest
does, through steps the issue asks of any run, each added to the last and timed best of three:

1. read: ``polars.read_csv``, every column as text (the floor's read, two files at a time);
2. + times: the timestamps parsed to UTC with the ingest's own parser;
3. + clustered: ordered by person, then time, with the ingest's own ``cluster`` (one integer
   key, the fastest order known here), as the store keeps events (mail by its sender, which
   stands in for the person the ingest ties it to);
4. + written: each file's rows written to Parquet with the store's own writer (zstd);
5. + counted: the rows and bytes per person, the least a day's features need.

No value is checked, typed beyond its time, deduplicated, gated or quarantined, and no rule or
model runs. Each step prints its wall time and its multiple of the floor, read in the same
process before and after the steps (best of those six reads: the machine's swing moves a
single best of three by a quarter).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
from floor import floor_seconds
from landing import day_landing, options

from insiderwatch.config import config_for_logs
from insiderwatch.ingest import cluster, parse_timestamps
from insiderwatch.store import write_atomic

STEPS = ["read", "+ times", "+ clustered", "+ written", "+ counted"]


def one_file(path: Path, steps: int, out: Path, tz: str) -> int:
    frame = pl.read_csv(path, infer_schema=False)
    person = next((c for c in ("user", "sender") if c in frame.columns), None)
    if steps >= 2 and "timestamp" in frame.columns:
        frame = frame.with_columns(parse_timestamps(frame["timestamp"], tz))
    if steps >= 3 and person and "timestamp" in frame.columns:
        frame = cluster(frame.rename({person: "user"})).rename({"user": person})
    if steps >= 4:
        write_atomic(frame, out / f"{path.parent.name}-{path.name}.parquet")
    if steps >= 5 and person:
        size = next((c for c in ("bytes", "bytes_out", "size_bytes") if c in frame.columns), None)
        counted = [pl.len()] + ([pl.col(size).cast(pl.Int64).sum()] if size else [])
        frame.group_by(person).agg(counted)
    return frame.height


def run(files: list[Path], steps: int, out: Path, tz: str, repeat: int = 3) -> tuple[float, int]:
    best, rows = float("inf"), 0
    for _ in range(repeat):
        t = time.perf_counter()
        with ThreadPoolExecutor(max_workers=2) as pool:
            rows = sum(pool.map(lambda p: one_file(p, steps, out, tz), files))
        best = min(best, time.perf_counter() - t)
    return best, rows


def main() -> None:
    args = options(argparse.ArgumentParser(description=__doc__.splitlines()[0])).parse_args()
    logs = day_landing(args.users, args.scale, args.seed, args.times)
    files = sorted(logs.rglob("*.csv*"), key=lambda p: (-p.stat().st_size, p.as_posix()))
    tz = config_for_logs(logs).site.timezone
    before, rows = floor_seconds(logs)
    timed: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for steps, label in enumerate(STEPS, start=1):
            seconds, read = run(files, steps, Path(tmp), tz)
            assert read == rows, (read, rows)
            timed.append((label, seconds))
    after, _ = floor_seconds(logs)
    floor = min(before, after)
    print(f"landing files {len(files)}, rows {rows:,}")
    print(f"floor (best of three before the steps and three after) {floor:.2f} s")
    for label, seconds in timed:
        print(f"  {label:14} {seconds:5.2f} s   {seconds / floor:4.1f} x the floor")


if __name__ == "__main__":
    main()
