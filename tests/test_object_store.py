"""The event store on object storage (S3, here a local S3 server): the daily run ingests,
detects and publishes with its store at ``s3://bucket/prefix`` and gives the alerts it gives
on a local folder."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from detectors.settings import load_tuning
from insiderwatch.alerts import list_alerts
from insiderwatch.cli import app
from insiderwatch.config import config_for_logs
from insiderwatch.db import Database
from insiderwatch.ingest import ingest
from insiderwatch.pipeline import detect_range
from insiderwatch.store import EventStore, is_url, store_path

from .conftest import SAMPLE_LOGS

DAY = date(2024, 6, 12)


def test_urls_and_paths_are_told_apart() -> None:
    assert is_url("s3://bucket/store") and is_url("gs://b/p") and is_url("az://c/p")
    assert not is_url("store") and not is_url("/srv/store") and not is_url(Path("s3:/x"))
    assert not is_url("file:///srv/store")
    assert isinstance(store_path("/srv/store"), Path)
    assert str(store_path("s3://bucket/store") / "events") == "s3://bucket/store/events"


@pytest.fixture
def s3_store(s3_server: str, reported_store: Path, tmp_path: Path) -> str:
    """The ingested sample (events, features, roster) copied to a fresh prefix of the bucket,
    as earlier daily runs would have left it there."""
    import s3fs

    local = tmp_path / "upload"
    shutil.copytree(
        reported_store, local, ignore=shutil.ignore_patterns("results", "reports", "lookbacks",
                                                             "alerts.duckdb*")
    )  # fmt: skip
    url = f"s3://{s3_server}/{tmp_path.name}/store"
    s3fs.S3FileSystem().put(str(local) + "/", url.removeprefix("s3://"), recursive=True)
    return url


@pytest.mark.slow
def test_the_daily_run_with_its_store_on_s3_gives_the_local_alerts(
    s3_store: str, reported_store: Path, tmp_path: Path, gate
) -> None:
    # What `insiderwatch run` does for the day (its leavers sync is left out for time): the
    # ingest writes the day's objects, detection reads every earlier day's from the bucket.
    config = config_for_logs(SAMPLE_LOGS)
    store = EventStore(s3_store)
    report = ingest(SAMPLE_LOGS, store, config, as_of=date(2024, 6, 29), start=DAY, end=DAY,
                    gate=gate)  # fmt: skip
    assert report.ok and report.totals()["stored"] > 1000
    database = Database(str(tmp_path / "alerts.duckdb"))
    detect_range(store, database, DAY, DAY, config, load_tuning(), "s3")
    on_s3 = list_alerts(database, DAY, DAY, include_over_budget=True)
    database.close()
    local = Database(str(reported_store / "alerts.duckdb"))
    reference = list_alerts(local, DAY, DAY, include_over_budget=True)
    local.close()
    assert on_s3.height > 0
    assert on_s3.drop("status").equals(reference.drop("status"))

    # The day's events, features and results are objects in the bucket; nothing was written
    # to a local folder named after the URL.
    assert store.remote
    logon = store.partition("events", "logon", DAY)
    assert logon.exists() and pl.read_parquet(str(logon)).height > 0
    assert store.partition("features", "user_day", DAY, "inputs.sha256").exists()
    assert store.partition("features", "baselines", DAY).exists()
    assert store.partition("results", "alerts", DAY).exists()
    assert not Path("s3:").exists()


def test_a_store_on_s3_needs_an_alert_store_named(s3_server: str) -> None:
    store = f"s3://{s3_server}/no-db/store"
    window = ["--start", DAY.isoformat(), "--end", DAY.isoformat()]
    done = CliRunner().invoke(app, ["run", "--logs", str(SAMPLE_LOGS), "--store", store,
                                    *window])  # fmt: skip
    assert done.exit_code == 2
    message = " ".join(done.output.split())
    assert "is on object storage" in message and "give one with --db" in message
    assert not EventStore(store).root.exists()  # refused before anything was written
