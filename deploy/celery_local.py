"""The daily DAG under Airflow's CeleryExecutor, started locally and run for one day.

    uv run python deploy/celery_local.py --day 2024-06-12 [--shards 4] [--workers 2] [--keep]

Starts, in a scratch folder (``--work``, default a new temporary one):

- PostgreSQL (Debian's ``postgresql``): database ``airflow`` for Airflow's metadata and the
  Celery results, database ``insiderwatch`` for the alert store;
- Redis (Debian's ``redis-server``) as the Celery broker;
- Airflow's api-server (the workers report to its execution API), scheduler and
  dag-processor, and ``--workers`` Celery workers, each running one task at a time.

Then it triggers ``insider_daily`` for the day with ``--shards`` shards of people, waits for
the run, and prints which worker ran each task and the day's alerts. The store (``--store``)
needs the days before ``--day`` already ingested, as earlier daily runs leave it; with
``--history`` the script ingests them from ``--logs`` first. Everything is stopped at the end
unless ``--keep`` (then the PIDs and URLs are printed).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DAG_ID = "insider_daily"


def worker_name() -> str:
    """Airflow's ``hostname_callable`` here: the worker's name, so a run shows which of the
    local workers ran each task (they share one machine's host name)."""
    return os.environ.get("INSIDERWATCH_WORKER_NAME") or socket.getfqdn()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    return None


class MissingServer(RuntimeError):
    """A Debian package the local cluster needs is not installed."""


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL server in a new temporary folder (removed after); yields
    ``postgresql://postgres@host:port``."""
    bindir = pg_bindir()
    if bindir is None:
        raise MissingServer("PostgreSQL server binaries not found (apt-get install postgresql)")
    # Directly under the temporary folder: when run as root the server runs as ``postgres``,
    # which must be able to reach it.
    root = Path(tempfile.mkdtemp(prefix="iw-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(root, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()
    subprocess.run(
        [*as_postgres, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
         "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"],
        check=True, capture_output=True,
    )  # fmt: skip
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-o", options,
         "-l", str(root / "server.log"), "-w", "start"],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def create_database(server: str, name: str) -> str:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return f"{server}/{name}"


@contextmanager
def redis_server(root: Path) -> Iterator[str]:
    """A throwaway Redis without persistence; yields ``redis://host:port/0``."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise MissingServer("redis-server not found (apt-get install redis-server)")
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(root), "--logfile", str(root / "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for_port(port, 30, "redis-server", root / "redis.log")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_for_port(port: int, seconds: float, name: str, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not listen on port {port} within {seconds:.0f} s; see {log}")


@dataclass
class Cluster:
    """A running local Airflow with Celery workers."""

    env: dict[str, str]
    server: str  # the PostgreSQL server, for more databases (the alert store)
    metadata_url: str
    logs: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def airflow(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [_airflow(), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def query(self, sql: str, *params) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.metadata_url) as conn:
            return conn.execute(sql, params).fetchall()

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {process.returncode}; last lines of its log:\n"
                    + _tail(self.logs / f"{name}.log")
                )


def _airflow() -> str:
    found = shutil.which("airflow", path=str(Path(sys.executable).parent))
    if found is None:
        raise MissingServer("the airflow command is not installed (uv sync --extra airflow)")
    return found


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def airflow_cluster(work: Path, workers: int = 2) -> Iterator[Cluster]:
    """PostgreSQL, Redis, the Airflow services and ``workers`` Celery workers, all local."""
    with ExitStack() as stack:
        server = stack.enter_context(postgres_server())
        broker = stack.enter_context(redis_server(work / "redis"))
        metadata = create_database(server, "airflow")
        home, logs = work / "airflow", work / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        api_port = free_port()
        sqlalchemy = metadata.replace("postgresql://", "postgresql+psycopg://")
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "deploy.celery_local.worker_name",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": sqlalchemy,
            "AIRFLOW__CELERY__BROKER_URL": broker,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{sqlalchemy}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            # Runs only when triggered: the local cluster must not start yesterday's run.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        }
        cluster = Cluster(env, server, metadata, logs)
        cluster.airflow("db", "migrate", timeout=600)
        services = {
            "api-server": ["api-server"],
            "scheduler": ["scheduler"],
            "dag-processor": ["dag-processor"],
        }
        for k in range(1, workers + 1):
            services[f"worker{k}"] = [
                "celery", "worker", "--concurrency", "1", "--skip-serve-logs",
                "--celery-hostname", f"worker{k}@%h",
            ]  # fmt: skip
        try:
            for name, args in services.items():
                own = {**env, "INSIDERWATCH_WORKER_NAME": name}
                log = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
                cluster.processes[name] = subprocess.Popen(
                    [_airflow(), *args], env=own, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
                log.close()
            _wait_for_port(api_port, 180, "api-server", logs / "api-server.log")
            yield cluster
        finally:
            _stop(cluster.processes)


def _stop(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    for process in processes.values():
        try:
            process.wait(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class RunResult:
    state: str
    seconds: float
    tasks: list[tuple[str, int, str, str, float, float]]
    # task_id, map_index, state, worker, seconds after the run started, seconds it ran


def run_day(
    cluster: Cluster,
    day: date,
    conf: dict,
    timeout: float = 900,
) -> RunResult:
    """Trigger insider_daily for ``day`` (logical date: 06:00 Tokyo the morning after) and wait."""
    deadline = time.monotonic() + 300
    while not cluster.query("SELECT 1 FROM serialized_dag WHERE dag_id = %s", DAG_ID):
        cluster.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError("the dag-processor did not load insider_daily within 300 s")
        time.sleep(2)
    run_id = f"insiderwatch_local_{day.isoformat()}_{secrets.token_hex(3)}"
    logical = f"{(day + timedelta(days=1)).isoformat()}T06:00:00+09:00"
    started = time.monotonic()
    cluster.airflow("dags", "trigger", DAG_ID, "-l", logical, "-r", run_id, "-c", json.dumps(conf))
    deadline = started + timeout
    state = "queued"
    while state not in ("success", "failed"):
        cluster.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} still {state} after {timeout:.0f} s")
        time.sleep(2)
        rows = cluster.query("SELECT state FROM dag_run WHERE run_id = %s", run_id)
        state = rows[0][0] if rows else "queued"
    tasks = cluster.query(
        "SELECT t.task_id, t.map_index, t.state, coalesce(t.hostname, ''),"
        " extract(epoch FROM t.start_date - r.start_date)::float,"
        " extract(epoch FROM t.end_date - t.start_date)::float"
        " FROM task_instance t JOIN dag_run r USING (dag_id, run_id)"
        " WHERE t.dag_id = %s AND t.run_id = %s ORDER BY t.start_date, t.task_id, t.map_index",
        DAG_ID,
        run_id,
    )
    return RunResult(state, time.monotonic() - started, [tuple(t) for t in tasks])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day", type=date.fromisoformat, required=True)
    parser.add_argument("--logs", type=Path, default=REPO / "sample_logs")
    parser.add_argument("--store", type=Path, default=None, help="default: <work>/store")
    parser.add_argument("--history", action="store_true", help="ingest the days before --day")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="leave the cluster running")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="iw-celery-"))
    store = (args.store or work / "store").resolve()
    if args.history:
        from insiderwatch.config import config_for_logs
        from insiderwatch.ingest import ingest
        from insiderwatch.store import EventStore

        report = ingest(
            args.logs, EventStore(store), config_for_logs(args.logs), as_of=args.day,
            end=args.day - timedelta(days=1),
        )  # fmt: skip
        print(f"history: {report.totals()['stored']:,} events up to {args.day - timedelta(1)}")
    stack = ExitStack()
    cluster = stack.enter_context(airflow_cluster(work, args.workers))
    try:
        alerts_db = create_database(cluster.server, "insiderwatch")
        conf = {"logs": str(args.logs.resolve()), "store": str(store), "db": alerts_db,
                "format": "auto", "shards": args.shards}  # fmt: skip
        result = run_day(cluster, args.day, conf)
        print(f"run {result.state} in {result.seconds:.0f} s ({args.workers} workers)")
        print(f"  {'task':<16} {'state':<8} {'worker':<8} {'start':>7} {'ran':>7}")
        for task_id, index, state, worker, start, ran in result.tasks:
            label = task_id if index < 0 else f"{task_id}[{index}]"
            print(f"  {label:<16} {state:<8} {worker:<8} {start:6.1f}s {ran:6.1f}s")
        from insiderwatch.alerts import list_alerts
        from insiderwatch.db import Database

        db = Database(alerts_db)
        alerts = list_alerts(db, args.day, args.day, include_over_budget=True)
        db.close()
        print(f"alerts for {args.day} in {alerts_db}: {alerts.height}")
        if args.keep:
            print(f"left running; Airflow at http://{cluster.env['AIRFLOW__API__HOST']}:"
                  f"{cluster.env['AIRFLOW__API__PORT']}, work folder {work}")  # fmt: skip
            stack.pop_all()
        if result.state != "success":
            sys.exit(1)
    finally:
        stack.close()


if __name__ == "__main__":
    main()
