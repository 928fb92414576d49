"""Rendering the day's reports for a company of 10,000 people: the security report and every
supervisor's report (goal: under 30 seconds).

    uv run python benchmarks/reports.py [--users 10000] [--alerts-per-day 100] [--seed 4343]

Setup, not timed and cached under ``benchmarks/data/`` (not committed): the day of
``benchmarks/daily.py`` (about 5 million events) is ingested through the quality gate and its
features built; the features, varied per person, stand in for the 29 days before it (the
sparklines read them). The alert store gets a full review budget of alerts (1 % of headcount)
on the day and on each of the 29 days before (the trend charts read them), each with three
findings and evidence references to the person's real event lines of the day, plus the
roster's people on notice in the leavers list. Real detection on this synthetic day finds
almost nothing, so the alerts are placed, not detected; rendering cost depends on how many
there are, not on why.

Timed: ``write_daily_reports`` for the day, then the pseudonymised overview. Prints wall time,
the number of reports and the peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from insiderwatch.alerts import publish
from insiderwatch.config import config_for_logs
from insiderwatch.db import Database, default_url
from insiderwatch.features import USER_DAY, build_features
from insiderwatch.ingest import ingest
from insiderwatch.quality import QualityGate
from insiderwatch.reports import write_daily_reports
from insiderwatch.scoring import ALERT_SCHEMA, alert_id
from insiderwatch.store import EventStore
from schemas.features import STORED_FEATURES

DATA = Path(__file__).resolve().parent / "data"
DAY = date(2024, 6, 3)
HISTORY = 29
DETECTORS = (
    ("bulk_file_transfer", "files", "high"),
    ("removable_media_copy", "removable", "high"),
    ("after_hours_access", "time", "medium"),
    ("personal_cloud_upload", "cloud", "high"),
    ("mass_printing", "print", "medium"),
)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _logs(users: int, seed: int) -> Path:
    logs = DATA / f"daily_{users}x1_s18_{seed}"
    if not (logs / "hr" / "employees.csv").exists():
        subprocess.run(
            [sys.executable, "-m", "insiderwatch.cli", "samples", "generate", "--out", str(logs),
             "--users", str(users), "--days", "1", "--seed", str(seed),
             "--start", DAY.isoformat(), "--scale", "18"],
            check=True,
        )  # fmt: skip
    return logs


def _history(store: EventStore, rng: np.random.Generator) -> None:
    features = pl.read_parquet(store.partition("features", USER_DAY, DAY))
    for back in range(1, HISTORY + 1):
        factor = pl.Series(rng.lognormal(0.0, 0.5, features.height))
        store.write_partition(
            "features",
            USER_DAY,
            DAY - timedelta(days=back),
            features.with_columns(
                pl.lit(DAY - timedelta(days=back)).alias("local_date"),
                *[
                    (pl.col(n) * factor).round(0)
                    for n in STORED_FEATURES
                    if not n.endswith("share")
                ],
            ),
        )


def _alerts(store: EventStore, db: Database, per_day: int, rng: np.random.Generator) -> None:
    roster = pl.read_parquet(store.roster_path())
    files = pl.read_parquet(store.partition("events", "file_access", DAY))
    refs = (
        files.sort("source_line")
        .group_by("user", maintain_order=True)
        .agg(evidence=pl.format("{}:{}", "source_file", "source_line").head(12))
    )
    people = roster.join(refs, on="user", how="inner")
    for back in range(HISTORY + 1):
        day = DAY - timedelta(days=back)
        chosen = people[np.sort(rng.choice(people.height, per_day, replace=False)).tolist()]
        rows, found = [], []
        for rank, person in enumerate(chosen.iter_rows(named=True), 1):
            picks = [DETECTORS[i] for i in rng.choice(len(DETECTORS), 3, replace=False)]
            score = int(rng.integers(50, 101))
            severity = "critical" if score >= 85 else "high" if score >= 70 else "medium"
            reasons = [
                f"{name.replace('_', ' ')}: {int(rng.integers(10, 400))} events; usual "
                f"{int(rng.integers(0, 10))}; peers {int(rng.integers(0, 10))}"
                for name, _, _ in picks
            ]
            rows.append(
                {
                    "alert_id": alert_id(person["user"], day),
                    "alert_date": day,
                    "user": person["user"],
                    "name": person["name"],
                    "department": person["department"],
                    "supervisor": person["supervisor"],
                    "score": score,
                    "severity": severity,
                    "rank": rank,
                    "budgeted": True,
                    "detectors": [name for name, _, _ in picks],
                    "reasons": reasons,
                    "evidence": person["evidence"],
                    "model_score": None,
                    "drivers": [],
                }
            )
            for (name, channel, sev), reason in zip(picks, reasons, strict=True):
                found.append(
                    {
                        "user": person["user"],
                        "local_date": day,
                        "detector": name,
                        "severity": sev,
                        "points": 55.0 if sev == "high" else 35.0,
                        "channel": channel,
                        "value": 1.0,
                        "reason": reason,
                        "evidence": person["evidence"],
                    }
                )
        publish(db, pl.DataFrame(rows, schema=ALERT_SCHEMA), pl.DataFrame(found), day, day, "b")
    on_notice = roster.filter(pl.col("notice_date").is_not_null())
    db.executemany(
        "INSERT INTO leavers (user_id, name, department, supervisor, notice_date, last_day, "
        "lookback_status, lookback_verdict, lookback_folder, open_alerts, as_of) "
        "VALUES (?, ?, ?, ?, ?, ?, 'done', 'Nothing stands out.', '', 0, ?)",
        [
            (
                r["user"],
                r["name"],
                r["department"],
                r["supervisor"],
                r["notice_date"],
                r["last_day"],
                DAY,
            )
            for r in on_notice.iter_rows(named=True)
        ],
    )


def _prepare(users: int, per_day: int, seed: int) -> tuple[Path, Path]:
    logs = _logs(users, seed)
    root = DATA / f"reports_{users}x{per_day}_{seed}"
    if (root / "ready").exists():
        return logs, root
    shutil.rmtree(root, ignore_errors=True)
    store = EventStore(root)
    config = config_for_logs(logs)
    t = time.perf_counter()
    report = ingest(logs, store, config, DAY, DAY, DAY, QualityGate())
    assert not report.errors, report.errors
    db = Database(default_url(root))
    db.start_run("bench", "ingest", time.strftime("%Y-%m-%d %H:%M:%S"), {})
    db.record_counts("bench", report.counts)
    build_features(store, DAY, config)
    rng = np.random.default_rng(seed)
    _history(store, rng)
    _alerts(store, db, per_day, rng)
    db.close()
    (root / "ready").touch()
    print(f"prepared {root} in {time.perf_counter() - t:.0f} s (not timed)")
    return logs, root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--alerts-per-day", type=int, default=100)
    parser.add_argument("--seed", type=int, default=4343)
    args = parser.parse_args()
    logs, root = _prepare(args.users, args.alerts_per_day, args.seed)
    config = config_for_logs(logs)
    store = EventStore(root)
    db = Database(default_url(root))
    out = root / "out"
    try:
        t = time.perf_counter()
        written = write_daily_reports(store, db, DAY, config, out=out)
        plain = time.perf_counter() - t
        t = time.perf_counter()
        write_daily_reports(
            store, db, DAY, config, out=root / "out-p", pseudonymise_key=b"benchmark-key-0123456789"
        )
        pseudonymised = time.perf_counter() - t
    finally:
        db.close()
    flagged = sum(1 for r in written.supervisors if r.flagged)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"people {args.users:,}; day {DAY}; {written.alerts} alerts on the day")
    print(
        f"reports: 1 security + {len(written.supervisors):,} supervisors "
        f"({flagged} with people to talk to), {size / 1e6:.1f} MB"
    )
    print(f"wall time, security and supervisor reports: {plain:.1f} s (goal < 30 s)")
    print(f"wall time, the pseudonymised security overview alone: {pseudonymised:.1f} s")
    print(f"peak memory (RSS): {_peak_mb():,.0f} MB")


if __name__ == "__main__":
    main()
