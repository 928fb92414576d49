"""The Airflow DAG files: every one imports cleanly, and insider_daily runs end to end with
``dag.test()`` on the sample logs and publishes the same alerts as the in-process pipeline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from detectors.settings import load_tuning
from insiderwatch.alerts import list_alerts
from insiderwatch.config import config_for_logs
from insiderwatch.db import Database
from insiderwatch.ingest import ingest
from insiderwatch.pipeline import detect_range
from insiderwatch.store import EventStore

REPO = Path(__file__).resolve().parent.parent
DAGS = REPO / "dags"
SAMPLE_LOGS = REPO / "sample_logs"
DAY = date(2024, 6, 12)  # a working day with incidents in the sample logs

RUNNER = """
import json, sys
import pendulum
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
result = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": sorted(bag.dag_ids)}
if sys.argv[2] == "run":
    dag = bag.get_dag("insider_daily")
    run = dag.test(
        logical_date=pendulum.datetime(2024, 6, 13, 6, tz="Asia/Tokyo"),
        run_conf={"logs": sys.argv[3], "store": sys.argv[4], "db": ""},
    )
    result["state"] = str(run.state)
print("RESULT " + json.dumps(result))
"""


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "PYTHONPATH": str(REPO),
    }
    airflow = shutil.which("airflow", path=str(Path(sys.executable).parent))
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    return env


def run_airflow(env: dict[str, str], *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(DAGS), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


def test_every_dag_file_imports_without_errors(airflow_env) -> None:
    result = run_airflow(airflow_env, "load")
    assert result["errors"] == {}
    files = sorted(p.stem for p in DAGS.glob("*.py"))
    assert "insider_daily" in result["dags"]
    assert len(result["dags"]) == len(files)


@pytest.mark.slow
def test_insider_daily_runs_end_to_end_like_the_cli(airflow_env, tmp_path: Path) -> None:
    store = tmp_path / "store"
    config = config_for_logs(SAMPLE_LOGS)
    # History before the day, as earlier daily runs would have left it.
    ingest(SAMPLE_LOGS, EventStore(store), config, as_of=DAY, end=date(2024, 6, 11))
    reference = tmp_path / "reference"
    shutil.copytree(store, reference)

    result = run_airflow(airflow_env, "run", str(SAMPLE_LOGS), str(store))

    assert result["state"] == "success"
    db = Database(str(store / "alerts.duckdb"))
    from_dag = list_alerts(db, DAY, DAY, include_over_budget=True)
    runs = db.query("SELECT kind, status FROM runs ORDER BY started_at")
    db.close()
    assert runs == [("ingest", "ok"), ("detect", "ok")]
    assert from_dag.height > 0

    ingest(SAMPLE_LOGS, EventStore(reference), config, as_of=DAY, start=DAY, end=DAY)
    ref_db = Database(str(reference / "alerts.duckdb"))
    detect_range(EventStore(reference), ref_db, DAY, DAY, config, load_tuning(), "cli")
    in_process = list_alerts(ref_db, DAY, DAY, include_over_budget=True)
    ref_db.close()
    assert from_dag.drop("status").equals(in_process.drop("status"))
