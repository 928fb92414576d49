"""Streaming a CERT-sized http.csv: a generated 2 GB file in the r6.2 layout, ingested through
the CERT adapter and the quality gate into an event store, with its peak memory.

    uv run python benchmarks/cert_stream.py [--gigabytes 2] [--users 1000] [--days 70]

The goal is peak memory under 1.5 GB however large the file: the adapter reads it in 64 MB
blocks and the ingest holds one day at a time. The density (about 30 MB of http.csv a day for
1,000 people) is that of r4.2, whose http.csv is about 14 GB over 17 months. The file is made
once and cached in benchmarks/data (not committed: generated, and as big as asked).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import psutil

from insiderwatch.adapters import stage
from insiderwatch.config import config_for_logs
from insiderwatch.ingest import ingest
from insiderwatch.quality import QualityGate
from insiderwatch.store import EventStore
from schemas import cert as spec

DATA = Path(__file__).resolve().parent / "data"
START = date(2010, 1, 4)
SITES = (
    "http://www.dropbox.com/upload", "http://wikileaks.org/", "http://www.cnn.com/world/",
    "http://jobhuntersbible.com/search", "http://news.example.com/markets",
    "http://www.weather.example/today", "http://intranet.dtaa.com/wiki/rotor-design",
)  # fmt: skip
WORDS = np.array(
    [
        "rotor",
        "design",
        "schedule",
        "test",
        "cost",
        "quality",
        "supplier",
        "yield",
        "wafer",
        "review",
        "budget",
        "plan",
    ]
)


def _users(n: int) -> list[str]:
    rng = np.random.default_rng(1)
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    return [f"{''.join(rng.choice(letters, 3))}{i:04d}" for i in range(n)]


def generate(folder: Path, gigabytes: float, users: int, days: int) -> None:
    """http.csv of about ``gigabytes`` spread over ``days``, plus LDAP and a site file."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = _users(users)
    ldap = pl.DataFrame(
        {
            "employee_name": [f"Person {u}" for u in ids],
            "user_id": ids,
            "email": [f"{u}@dtaa.com" for u in ids],
            "role": "Engineer",
            "business_unit": "1",
            "functional_unit": "2 - Research",
            "department": [f"{i % 8} - Dept" for i in range(users)],
            "team": "1 - Team",
            "supervisor": ["" if i == 0 else "Person " + ids[0] for i in range(users)],
        }
    )
    (folder / spec.LDAP_FOLDER).mkdir(exist_ok=True)
    ldap.with_columns(pl.when(pl.all() != "").then(pl.all())).write_csv(
        folder / spec.LDAP_FOLDER / f"{START:%Y-%m}.csv"
    )
    (folder / "insiderwatch.toml").write_text(
        '[site]\ninternal_domains = ["dtaa.com"]\ntimezone = "America/New_York"\n'
    )
    rng = np.random.default_rng(2)
    bags = [
        " ".join(rng.choice(WORDS, 6)) + ", " + " ".join(rng.choice(WORDS, 4)) for _ in range(997)
    ]
    target = gigabytes * 1e9
    per_day = int(target / days / 150)  # about 150 bytes a record
    path = folder / "http.csv.part"  # renamed when whole, so a broken run is not cached
    with open(path, "wb") as fh:
        fh.write(b"id,date,user,pc,url,activity,content\n")
        for d in range(days):
            day = START + timedelta(days=d)
            n = per_day
            seconds = np.sort(rng.integers(7 * 3600, 19 * 3600, size=n))
            who = rng.integers(0, users, size=n)
            frame = pl.DataFrame(
                {
                    "id": [f"{{{i:04X}-{d:08X}-{n:08X}}}" for i in range(n)],
                    "date": pl.Series(
                        (np.datetime64(day, "s") + seconds.astype("timedelta64[s]")).astype(
                            "datetime64[ms]"
                        )
                    ).dt.strftime(spec.TIMESTAMP_FORMAT),
                    "user": np.array(ids)[who],
                    "pc": [f"PC-{w:04d}" for w in who],
                    "url": np.array(SITES)[rng.integers(0, len(SITES), size=n)],
                    "activity": np.array(["WWW Visit"] * 18 + ["WWW Download", "WWW Upload"])[
                        rng.integers(0, 20, size=n)
                    ],
                    "content": np.array(bags)[rng.integers(0, len(bags), size=n)],
                }
            )
            frame.write_csv(fh, include_header=False)
            if fh.tell() >= target:
                break
    path.rename(folder / "http.csv")


class PeakSampler:
    """Peak resident memory of this process, sampled every 50 ms (ru_maxrss as a check)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        process = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, process.memory_info().rss)
            self._stop.wait(0.05)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--days", type=int, default=70)
    args = parser.parse_args()
    folder = DATA / f"cert_http_{args.gigabytes:g}GB_{args.users}x{args.days}"
    if not (folder / "http.csv").exists():
        t = time.perf_counter()
        generate(folder, args.gigabytes, args.users, args.days)
        print(f"generated {folder} in {time.perf_counter() - t:.0f} s")
    size = (folder / "http.csv").stat().st_size
    config = config_for_logs(folder)
    gate = QualityGate()
    before = psutil.Process().memory_info().rss
    work = Path(tempfile.mkdtemp(prefix="iw-cert-", dir=DATA))
    try:
        with PeakSampler() as sampler:
            t = time.perf_counter()
            staged = stage(folder, "cert", work / "staged", config)
            staging = time.perf_counter() - t
            report = ingest(
                staged.folder, EventStore(work / "store"), config, date(2011, 1, 1), gate=gate
            )
            elapsed = time.perf_counter() - t
    finally:
        shutil.rmtree(work, ignore_errors=True)
    web = [c for c in report.counts if c.source == "web"]
    read = sum(c.read for c in web)
    stored = sum(c.stored for c in web)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"http.csv               {size / 1e9:.2f} GB, {staged.vendor_rows['http.csv']:,} records")
    print(f"days                   {len(web)}")
    print(f"staged / read / stored {staged.staged:,} / {read:,} / {stored:,}")
    print(f"reconciles             {staged.reconciles and all(c.reconciles for c in web)}")
    print(f"staging                {staging:.0f} s")
    print(f"staging + ingest       {elapsed:.0f} s ({size / 1e6 / elapsed:.1f} MB/s)")
    print(f"memory before the run  {before / 2**20:,.0f} MiB (imports, quality gate)")
    print(f"peak memory            {max(sampler.peak, maxrss) / 2**20:,.0f} MiB (goal < 1,536)")


if __name__ == "__main__":
    main()
