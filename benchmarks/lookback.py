"""A six-month lookback in a store of 1,000 people × 180 days.

    uv run python benchmarks/lookback.py [--users 1000] [--days 180] [--seed 4545]

The store (generated logs, ingested without the gate, features built as the daily runs would
have left them) is made once and cached under ``benchmarks/data/``; only the lookback itself
is timed: the leaver's six months read, compared with the peers and summarised, then the same
with the HTML report written. Prints the time of each of five runs and the peak memory.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from insiderwatch.config import config_for_logs
from insiderwatch.detect import days_between
from insiderwatch.features import ensure_features
from insiderwatch.ingest import ingest
from insiderwatch.leavers import write_lookback
from insiderwatch.lookback import run_lookback, validate_request
from insiderwatch.samples import generate
from insiderwatch.store import EventStore

DATA = Path(__file__).resolve().parent / "data"
START = date(2024, 1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--seed", type=int, default=4545)
    args = parser.parse_args()

    root = DATA / f"lookback_{args.users}x{args.days}_{args.seed}"
    logs, store = root / "logs", EventStore(root / "store")
    end = START + timedelta(days=args.days - 1)
    config = config_for_logs(logs) if logs.exists() else None
    if not (root / "ready").exists():
        t = time.perf_counter()
        generate(args.users, args.days, args.seed, logs, START)
        config = config_for_logs(logs)
        ingest(logs, store, config, as_of=end)
        ensure_features(store, days_between(START, end), config)
        (root / "ready").write_text("store built\n")
        print(f"built the store in {time.perf_counter() - t:.0f} s (once)")
    assert config is not None
    roster = pl.read_parquet(store.roster_path())
    leaver = (
        roster.filter(pl.col("notice_date").is_not_null()).sort("notice_date").row(-1, named=True)
    )
    request = validate_request(
        {
            "user": leaver["user"],
            "notice_date": leaver["notice_date"].isoformat(),
            "last_day": leaver["last_day"].isoformat(),
            "months": 6,
        },
        roster,
    )
    events = sum(
        pl.scan_parquet(p).select(pl.len()).collect().item()
        for p in store.root.glob("events/*/date=*/part-0.parquet")
    )
    times, full = [], []
    out = Path(tempfile.mkdtemp(prefix="iw-lookback-"))
    for _ in range(5):
        t = time.perf_counter()
        result = run_lookback(store, request, config)
        times.append(time.perf_counter() - t)
        t = time.perf_counter()
        write_lookback(store, request, config, out)
        full.append(time.perf_counter() - t)
    shutil.rmtree(out, ignore_errors=True)
    r = request
    median = statistics.median(times)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"store: {args.users:,} people × {args.days} days, {events:,} events")
    print(f"lookback of {r.user} ({r.start} – {r.last_day}, notice {r.notice_date})")
    print(f"  tables and verdict: {', '.join(f'{x:.2f}' for x in times)} s; median {median:.2f} s")
    print(
        f"  with the HTML report (charts, heat map, top events): "
        f"{', '.join(f'{x:.2f}' for x in full)} s; median {statistics.median(full):.2f} s"
    )
    print(f"  verdict: {result.verdict}")
    print(f"peak memory (RSS): {peak:,.0f} MB")


if __name__ == "__main__":
    main()
