"""A six-month lookback in a store of 1,000 people × 180 days.

    uv run python benchmarks/lookback.py [--users 1000] [--days 180] [--seed 4545]
    uv run python benchmarks/lookback.py --company

The store (generated logs, ingested without the gate, features built as the daily runs would
have left them) is made once and cached under ``benchmarks/data/``; only the lookback itself
is timed: the leaver's six months read, compared with the peers and summarised, then the same
with the HTML report written. Prints the time of each of five runs and the peak memory.

``--company`` times it at the size of the daily benchmark's company instead: the benchmark
day of ``daily.py`` (10,000 people, 4.9 million events) ingested, then copied back over every
day of the six months before it with its times moved by whole days, and one person given
notice on the day: 10,000 people × 184 days, 907 million events. The generator cannot make
that many days of that many people, so every day holds the same activity; what is timed is
reading one person's six months out of a store of that size. Building it takes about nine
minutes once and 13 GB of disk (``benchmarks/data/lookback_company_…``).
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
from landing import DAY, day_landing

from insiderwatch.config import Config, config_for_logs
from insiderwatch.detect import days_between
from insiderwatch.features import ensure_features
from insiderwatch.ingest import ingest
from insiderwatch.leavers import write_lookback
from insiderwatch.lookback import LookbackRequest, run_lookback, validate_request
from insiderwatch.samples import generate
from insiderwatch.store import EventStore

DATA = Path(__file__).resolve().parent / "data"
START = date(2024, 1, 1)
SOURCES = ("logon", "file_access", "print", "web", "device", "mail")


def _request(store: EventStore) -> LookbackRequest:
    """Six months for the person whose notice came last in the stored roster."""
    roster = pl.read_parquet(store.roster_path())
    leaver = (
        roster.filter(pl.col("notice_date").is_not_null()).sort("notice_date").row(-1, named=True)
    )
    return validate_request(
        {
            "user": leaver["user"],
            "notice_date": leaver["notice_date"].isoformat(),
            "last_day": leaver["last_day"].isoformat(),
            "months": 6,
        },
        roster,
    )


def generated_store(users: int, days: int, seed: int) -> tuple[EventStore, Config]:
    """Generated logs of ``users`` people over ``days`` days, ingested and with features."""
    root = DATA / f"lookback_{users}x{days}_{seed}"
    logs, store = root / "logs", EventStore(root / "store")
    end = START + timedelta(days=days - 1)
    if not (root / "ready").exists():
        t = time.perf_counter()
        generate(users, days, seed, logs, START)
        ingest(logs, store, config_for_logs(logs), as_of=end)
        ensure_features(store, days_between(START, end), config_for_logs(logs))
        (root / "ready").write_text("store built\n")
        print(f"built the store in {time.perf_counter() - t:.0f} s (once)")
    return store, config_for_logs(logs)


def company_store(users: int, scale: float, seed: int) -> tuple[EventStore, Config]:
    """The daily benchmark's day, ingested and copied back over the six months before it;
    one person, the roster's 1,235th, gets notice on the day and leaves four weeks later."""
    logs = day_landing(users, scale, seed)
    config = config_for_logs(logs)
    root = DATA / f"lookback_company_{users}_s{scale:g}_{seed}"
    store = EventStore(root / "store")
    if not (root / "ready").exists():
        t = time.perf_counter()
        shutil.rmtree(root, ignore_errors=True)
        ingest(logs, store, config, as_of=DAY)
        roster = pl.read_parquet(store.roster_path())
        leaver = pl.col("user") == roster["user"][min(1234, roster.height - 1)]
        leaves = DAY + timedelta(days=28)
        store.write_roster(
            roster.with_columns(
                notice_date=pl.when(leaver).then(pl.lit(DAY)).otherwise("notice_date"),
                last_day=pl.when(leaver).then(pl.lit(leaves)).otherwise("last_day"),
            )
        )
        first = _request(store).start
        for source in SOURCES:
            day = pl.read_parquet(store.partition("events", source, DAY))
            for back in range(1, (DAY - first).days + 1):
                moved = day.with_columns(
                    pl.col("timestamp") - timedelta(days=back),
                    pl.col("local_date") - timedelta(days=back),
                )
                store.write_partition("events", source, DAY - timedelta(days=back), moved)
        ensure_features(store, days_between(first, DAY), config)
        (root / "ready").write_text("store built\n")
        print(f"built the store in {time.perf_counter() - t:.0f} s (once)")
    return store, config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, help="people (1,000; with --company 10,000)")
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--seed", type=int, help="seed (4545; with --company 4343)")
    parser.add_argument(
        "--company", action="store_true", help="the daily benchmark's company over six months"
    )
    args = parser.parse_args()

    if args.company:
        store, config = company_store(args.users or 10_000, 18.0, args.seed or 4343)
    else:
        store, config = generated_store(args.users or 1000, args.days, args.seed or 4545)
    request = _request(store)
    files = list(store.root.glob("events/*/date=*/part-0.parquet"))
    events = sum(pl.scan_parquet(p).select(pl.len()).collect().item() for p in files)
    people = pl.scan_parquet(store.roster_path()).select(pl.len()).collect().item()
    stored_days = len({p.parent.name for p in files})
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
    print(f"store: {people:,} people × {stored_days} days, {events:,} events")
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
