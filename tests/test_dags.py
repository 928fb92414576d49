"""The Airflow DAG files: every one imports cleanly, and resignation_lookback runs with
``dag.test()``. insider_daily runs end to end on Celery workers in ``test_celery.py``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from insiderwatch.config import config_for_logs
from insiderwatch.ingest import ingest
from insiderwatch.store import EventStore

REPO = Path(__file__).resolve().parent.parent
DAGS = REPO / "dags"
SAMPLE_LOGS = REPO / "sample_logs"
DAY = date(2024, 6, 12)  # a working day with incidents in the sample logs

RUNNER = """
import json, sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
result = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": sorted(bag.dag_ids)}
if sys.argv[2] == "lookback":
    dag = bag.get_dag("resignation_lookback")
    result["states"] = []
    for conf in json.loads(sys.argv[3]):
        run = dag.test(run_conf=conf)
        result["states"].append(str(run.state))
        print("END OF RUN", flush=True)
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


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    """A store holding the sample logs up to the day before DAY, as earlier runs left it."""
    store = tmp_path_factory.mktemp("history") / "store"
    config = config_for_logs(SAMPLE_LOGS)
    ingest(SAMPLE_LOGS, EventStore(store), config, as_of=DAY, end=date(2024, 6, 11))
    return store


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


def test_resignation_lookback_writes_the_report_for_a_valid_request(
    airflow_env, history, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    shutil.copytree(history, store)
    conf = {
        "user": "u00101", "notice_date": "2024-05-27", "last_day": "2024-06-17", "months": 6,
        "logs": str(SAMPLE_LOGS), "store": str(store),
    }  # fmt: skip
    result = run_airflow(airflow_env, "lookback", json.dumps([conf]))
    assert result["states"] == ["success"]
    folder = store / "lookbacks" / "u00101_2024-05-27"
    assert (folder / "weekly.parquet").exists() and (folder / "comparison.csv").exists()
    assert "<svg" in (folder / "report.html").read_text(encoding="utf-8")
    assert (folder / "verdict.txt").read_text(encoding="utf-8").startswith("Stands out")


BAD_REQUESTS = [
    ({"user": "../../etc", "notice_date": "2024-05-27"}, "user must be a plain user id"),
    ({"user": "u00101", "notice_date": "27/05/2024"}, "notice_date must be a date"),
    (
        {"user": "u00101", "notice_date": "2024-05-27", "last_day": "2024-05-01"},
        "last_day 2024-05-01 is before notice_date 2024-05-27",
    ),
    ({"user": "nobody", "notice_date": "2024-05-27"}, "unknown user 'nobody'"),
]


def test_resignation_lookback_rejects_bad_requests_and_writes_nothing(
    airflow_env, history, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    shutil.copytree(history, store)
    confs = [{**c, "logs": str(SAMPLE_LOGS), "store": str(store)} for c, _ in BAD_REQUESTS]
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(DAGS), "lookback", json.dumps(confs)],
        env=airflow_env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    output = done.stdout + done.stderr
    result = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    assert result, output[-3000:]
    assert json.loads(result[-1].removeprefix("RESULT "))["states"] == ["failed"] * len(confs)
    runs = done.stdout.split("END OF RUN")
    for (_, message), log in zip(BAD_REQUESTS, runs, strict=False):
        assert message in log, (message, log[-2000:])
    assert not (store / "lookbacks").exists()
