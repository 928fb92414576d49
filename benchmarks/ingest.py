"""Ingest + quality gate throughput: 2,000 people × 5 days of generated logs.

    uv run python benchmarks/ingest.py [--users 2000] [--days 5] [--scale 1.0]

Prints events per second for ingest with the Great Expectations gate (the gate's one-off
import is timed separately), and the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

from insiderwatch.config import config_for_logs
from insiderwatch.ingest import ingest
from insiderwatch.quality import QualityGate
from insiderwatch.samples import generate
from insiderwatch.store import EventStore

DATA = Path(__file__).resolve().parent / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=4242)
    args = parser.parse_args()

    logs = DATA / f"ingest_{args.users}x{args.days}_s{args.scale}_{args.seed}"
    if not (logs / "hr" / "employees.csv").exists():
        t = time.perf_counter()
        generate(args.users, args.days, args.seed, logs, date(2024, 6, 3), args.scale)
        print(f"generated {logs} in {time.perf_counter() - t:.1f} s")
    size = sum(p.stat().st_size for p in logs.rglob("*") if p.is_file())

    t = time.perf_counter()
    gate = QualityGate()
    gate_load = time.perf_counter() - t

    store_dir = Path(tempfile.mkdtemp(prefix="iw-bench-"))
    try:
        t = time.perf_counter()
        report = ingest(
            logs, EventStore(store_dir), config_for_logs(logs), date(2026, 1, 1), gate=gate
        )
        elapsed = time.perf_counter() - t
    finally:
        shutil.rmtree(store_dir, ignore_errors=True)
    totals = report.totals()
    events = totals["read"]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"people × days          {args.users} × {args.days}")
    print(f"landing files          {size / 1e6:.1f} MB compressed")
    print(
        f"events read            {events:,} (stored {totals['stored']:,}, "
        f"quarantined {totals['quarantined']:,}, duplicates {totals['duplicates']:,})"
    )
    print(f"ingest + gate          {elapsed:.2f} s")
    print(f"events per second      {events / elapsed:,.0f}")
    print(f"gate import (one-off)  {gate_load:.2f} s")
    print(f"peak memory            {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
