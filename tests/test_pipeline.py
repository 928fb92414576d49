"""The daily pipeline on a generated organisation: reruns are identical and keep triage, a
day scores the same alone or inside a backfill, and nothing after a day changes its alerts."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from detectors.settings import load_tuning
from insiderwatch.alerts import list_alerts, set_status
from insiderwatch.config import config_for_logs
from insiderwatch.db import Database
from insiderwatch.ingest import ingest
from insiderwatch.pipeline import detect_range
from insiderwatch.samples import generate
from insiderwatch.store import EventStore

SEED = 5150  # a development seed (the acceptance test uses another one)
START, DAYS = date(2024, 4, 1), 56
FIRST, LAST = date(2024, 5, 1), START + timedelta(days=DAYS - 1)
TUNING = load_tuning(None)


@pytest.fixture(scope="module")
def org(tmp_path_factory) -> tuple[Path, Path]:
    """Landing folder and an ingested store (no alerts yet)."""
    root = tmp_path_factory.mktemp("org")
    logs, store = root / "logs", root / "store"
    generate(60, DAYS, SEED, logs, START)
    config = config_for_logs(logs)
    report = ingest(logs, EventStore(store), config, as_of=LAST)
    assert not report.errors
    return logs, store


def run(logs: Path, store: Path, start: date, end: date, run_id: str = "r") -> pl.DataFrame:
    database = Database(str(store / "alerts.duckdb"))
    try:
        return detect_range(
            EventStore(store), database, start, end, config_for_logs(logs), TUNING, run_id
        )
    finally:
        database.close()


def copy_store(store: Path, to: Path) -> Path:
    shutil.copytree(store, to)
    return to


def test_rerun_gives_identical_alerts_and_keeps_triage(org, tmp_path: Path) -> None:
    logs, base = org
    store = copy_store(base, tmp_path / "store")
    first = run(logs, store, FIRST, LAST, "run-1")
    assert first.height > 0
    db = Database(str(store / "alerts.duckdb"))
    chosen = list_alerts(db)["alert_id"][0]
    set_status(db, chosen, "confirmed", datetime(2024, 6, 1, 9), "spoke to them", "sec")
    rows_before = db.query("SELECT * EXCLUDE (run_id, status) FROM alerts ORDER BY alert_id")
    findings_before = db.query("SELECT * EXCLUDE (run_id) FROM findings ORDER BY finding_id")
    db.close()

    second = run(logs, store, FIRST, LAST, "run-2")

    assert second.equals(first)
    db = Database(str(store / "alerts.duckdb"))
    assert db.query("SELECT * EXCLUDE (run_id, status) FROM alerts ORDER BY alert_id") == (
        rows_before
    )
    assert db.query("SELECT * EXCLUDE (run_id) FROM findings ORDER BY finding_id") == (
        findings_before
    )
    assert db.query("SELECT COUNT(*) - COUNT(DISTINCT alert_id) FROM alerts")[0][0] == 0
    assert dict(db.query("SELECT alert_id, status FROM alerts"))[chosen] == "confirmed"
    db.close()


def test_a_day_scores_the_same_alone_and_in_a_backfill(org, tmp_path: Path) -> None:
    logs, base = org
    backfill = run(logs, copy_store(base, tmp_path / "a"), FIRST, LAST)
    busiest = backfill.group_by("alert_date").len().sort("len", "alert_date").row(-1)[0]
    alone = run(logs, copy_store(base, tmp_path / "b"), busiest, busiest)
    assert alone.height > 0
    assert alone.equals(backfill.filter(pl.col("alert_date") == busiest))


def test_later_events_never_change_a_days_alerts(org, tmp_path: Path) -> None:
    logs, base = org
    day = date(2024, 5, 15)
    reference = run(logs, copy_store(base, tmp_path / "a"), day, day)
    store = copy_store(base, tmp_path / "b")
    # The day after: someone copies 5 GB to USB, and another day's mail vanishes.
    later = day + timedelta(days=1)
    part = EventStore(store).partition("events", "file_access", later)
    files = pl.read_parquet(part)
    spike = files.head(50).with_columns(
        destination=pl.lit("removable"), bytes=pl.lit(100_000_000, dtype=pl.Int64)
    )
    pl.concat([files, spike]).write_parquet(part)
    EventStore(store).partition("events", "mail", later + timedelta(days=1)).unlink()
    changed = run(logs, store, day, later)
    assert changed.filter(pl.col("alert_date") == day).equals(reference)
    assert (
        changed.filter(pl.col("alert_date") == later)["user"]
        .is_in(spike["user"].unique().implode())
        .any()
    ), "the spike itself is seen on its own day"


def test_alerts_explain_themselves(org, tmp_path: Path) -> None:
    logs, base = org
    alerts = run(logs, copy_store(base, tmp_path / "s"), FIRST, LAST)
    budget = alerts.filter(pl.col("budgeted"))
    assert budget.height > 0
    for row in budget.iter_rows(named=True):
        first = row["reasons"][0]
        assert "usual" in first and "peers" in first, first
        assert row["evidence"] or row["detectors"] == ["isolation_forest"], row
        assert 0 < row["score"] <= 100
    per_day = budget.group_by("alert_date").len()["len"].max()
    assert per_day <= 1  # 60 people × 1 % rounds up to one alert a day
