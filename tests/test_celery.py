"""The daily DAG under Airflow's CeleryExecutor: PostgreSQL for Airflow's metadata and the
alert store, Redis as the broker, two Celery workers, detection mapped over shards of people.
Its alerts must be exactly those of the single-process run (``insiderwatch run``'s
``detect_range``), and its reports written from them.

Needs Debian's postgresql and redis-server; .ci/run installs both and sets
INSIDERWATCH_REQUIRE_CELERY=1 so that a missing one fails instead of skipping.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import date
from pathlib import Path

import pytest

from deploy.celery_local import airflow_cluster, create_database, pg_bindir, run_day
from detectors.settings import load_tuning
from insiderwatch.alerts import list_alerts
from insiderwatch.config import config_for_logs
from insiderwatch.db import Database
from insiderwatch.ingest import ingest
from insiderwatch.pipeline import detect_range
from insiderwatch.store import EventStore

from .conftest import SAMPLE_LOGS

DAY = date(2024, 6, 12)  # a working day with incidents in the sample logs
SHARDS = 2


@pytest.fixture(scope="module")
def servers_installed() -> None:
    missing = [
        name
        for name, found in (
            ("postgresql", pg_bindir()),
            ("redis-server", shutil.which("redis-server")),
        )
        if not found
    ]
    if missing:
        message = f"not installed: {', '.join(missing)} (apt-get install {' '.join(missing)})"
        if os.environ.get("INSIDERWATCH_REQUIRE_CELERY"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.slow
def test_the_daily_dag_on_celery_workers_gives_the_single_process_alerts(
    servers_installed, reported_store: Path, tmp_path: Path
) -> None:
    store, reference = tmp_path / "store", tmp_path / "reference"
    shutil.copytree(reported_store, store)
    shutil.copytree(reported_store, reference)
    for copy in (store, reference):
        (copy / "alerts.duckdb").unlink()
        shutil.rmtree(copy / "results")

    with airflow_cluster(tmp_path / "celery", workers=2) as cluster:
        alerts_db = create_database(cluster.server, "insiderwatch")
        conf = {"logs": str(SAMPLE_LOGS), "store": str(store), "db": alerts_db,
                "format": "auto", "shards": SHARDS}  # fmt: skip
        result = run_day(cluster, DAY, conf)
        db = Database(alerts_db)
        from_celery = list_alerts(db, DAY, DAY, include_over_budget=True)
        runs = db.query("SELECT kind, status FROM runs ORDER BY started_at")
        db.close()

    states = {(task, index): state for task, index, state, *_ in result.tasks}
    assert result.state == "success", result.tasks
    assert set(states.values()) == {"success"}
    # Detection was mapped over the shards, and the run was shared by both workers.
    for mapped in ("baselines", "detect"):
        assert sorted(i for t, i in states if t == mapped) == list(range(SHARDS))
    assert {worker for _, _, _, worker, *_ in result.tasks} == {"worker1", "worker2"}
    assert runs == [("ingest", "ok"), ("detect", "ok")]
    assert not (store / "work").exists() or not any((store / "work").iterdir())

    config = config_for_logs(SAMPLE_LOGS)
    ingest(SAMPLE_LOGS, EventStore(reference), config, as_of=DAY, start=DAY, end=DAY)
    ref_db = Database(str(reference / "alerts.duckdb"))
    detect_range(EventStore(reference), ref_db, DAY, DAY, config, load_tuning(), "cli")
    in_process = list_alerts(ref_db, DAY, DAY, include_over_budget=True)
    ref_db.close()
    assert from_celery.height >= 2
    assert from_celery.drop("status").equals(in_process.drop("status"))

    # The reports task wrote the day's reports from those alerts; sending is off by default.
    folder = store / "reports" / DAY.isoformat()
    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    security = (folder / "security.html").read_text(encoding="utf-8")
    budgeted = from_celery.filter(from_celery["budgeted"])["alert_id"].to_list()
    assert index["alerts"] == len(budgeted) > 0
    assert all(alert in security for alert in budgeted)
    assert index["supervisors"] and all((folder / s["html"]).exists() for s in index["supervisors"])
