from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from deploy.celery_local import pg_bindir
from deploy.celery_local import postgres_server as local_postgres
from insiderwatch.config import load_config
from insiderwatch.ingest import IngestReport, ingest
from insiderwatch.quality import QualityGate
from insiderwatch.store import EventStore

REPO = Path(__file__).resolve().parent.parent
# pytest-xdist starts its workers with COLUMNS=80, which the CLI's console would keep as its
# width for good; without it, each CliRunner invocation's own COLUMNS applies, as in one process.
os.environ.pop("COLUMNS", None)
SAMPLE_LOGS = REPO / "sample_logs"
AS_OF = date(2024, 4, 30)

ROSTER = """\
user,name,email,department,role,supervisor,hire_date,notice_date,last_day,priority,personal_emails
u1,山田 太郎,taro.yamada@corp.example,研究開発部,engineer,u3,2019-04-01,,,false,taro_y@gmail.com
u2,Emily Carter,emily.carter@corp.example,営業部,sales,u3,2020-10-01,2024-04-10,2024-04-26,false,
u3,佐藤 花子,hanako.sato@corp.example,研究開発部,manager,,2010-04-01,,,true,\
hanako.s@yahoo.co.jp;hs@icloud.com
"""

LOGON_HEADER = "timestamp,user,host,activity,remote"
FILE_HEADER = "timestamp,user,host,action,path,bytes,destination,system,classification"


def logon_rows(n: int, day: str = "2024-04-01") -> list[str]:
    """n distinct, valid logon rows on ``day`` (naive local timestamps)."""
    return [
        f"{day} {8 + i // 60:02d}:{i % 60:02d}:00,u{1 + i % 3},PC-{i % 3},logon,false"
        for i in range(n)
    ]


def file_rows(n: int, day: str = "2024-04-01") -> list[str]:
    return [
        f"{day} {9 + i // 60:02d}:{i % 60:02d}:00,u{1 + i % 3},PC-1,read,"
        f"\\\\fs01\\rnd\\doc{i}.docx,{1000 + i},share,plm,社外秘"
        for i in range(n)
    ]


def csv_text(header: str, rows: list[str]) -> str:
    return "\n".join([header, *rows]) + "\n"


@pytest.fixture
def landing(tmp_path: Path) -> Callable[..., Path]:
    """Make a landing folder with the test roster and the given files (path -> str | bytes)."""

    def make(files: dict[str, str | bytes], roster: str = ROSTER) -> Path:
        root = tmp_path / "landing"
        (root / "hr").mkdir(parents=True, exist_ok=True)
        (root / "hr" / "employees.csv").write_text(roster, encoding="utf-8")
        for rel, content in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        return root

    return make


@pytest.fixture(scope="session")
def gate() -> QualityGate:
    return QualityGate()


@pytest.fixture
def run_ingest(tmp_path: Path, gate: QualityGate) -> Callable[..., tuple[IngestReport, EventStore]]:
    def run(logs: Path, **kwargs) -> tuple[IngestReport, EventStore]:
        store = EventStore(tmp_path / "store")
        kwargs.setdefault("as_of", AS_OF)
        config = load_config(kwargs.pop("config_file", None))
        report = ingest(logs, store, config, gate=gate, **kwargs)
        return report, store

    return run


def stored(store: EventStore, source: str, area: str = "events") -> pl.DataFrame:
    return store.scan(source, area=area).collect()


def assert_reconciles(report: IngestReport, store: EventStore) -> None:
    """Counts add up, and agree with what is actually on disk."""
    for count in report.counts:
        assert count.read == count.stored + count.quarantined + count.duplicates, count
        if count.source == "hr":
            continue
        if count.day is not None:
            events = store.partition("events", count.source, count.day)
            on_disk = pl.read_parquet(events).height if events.exists() else 0
            assert on_disk == count.stored, count
        quarantine = store.partition("quarantine", count.source, count.day)
        on_disk = pl.read_parquet(quarantine).height if quarantine.exists() else 0
        assert on_disk == count.quarantined, count


# ---------------------------------------------------------------------------------------------
# A real PostgreSQL server for the alert-store tests (Debian's postgresql package; .ci/run
# installs it and sets INSIDERWATCH_REQUIRE_POSTGRES=1 so a missing server fails, not skips).


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    if pg_bindir() is None:
        if os.environ.get("INSIDERWATCH_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL server binaries not found (apt-get install postgresql)")
        pytest.skip("PostgreSQL server binaries not installed")
    with local_postgres() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the session's server."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{postgres_server}/{name}"


@pytest.fixture(params=["duckdb", "postgresql"])
def alert_db_url(request, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return str(tmp_path / "alerts.duckdb")
    return request.getfixturevalue("postgres_url")


# The sample logs ingested in full once per session (through the CLI, so the run records are
# there too); tests that change a store copy it first.
REPORT_START, REPORT_END = date(2024, 6, 10), date(2024, 6, 21)


def built_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]
) -> Path:
    """A store made by ``build`` once per test run, however many pytest-xdist workers ask for
    it: the first takes a lock and builds, the others wait. Each worker gets its own copy, since
    tests open its DuckDB file and DuckDB lets one process at a time do that, and asking again
    returns that copy. A failed build leaves no marker, so every worker that asks fails the
    same way."""
    own = tmp_path_factory.getbasetemp() / f"shared-{name}" / "store"
    if own.exists():  # asked for again in the same worker: its copy is there
        return own
    own.parent.mkdir(exist_ok=True)
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        build(own)
        return own
    folder = tmp_path_factory.getbasetemp().parent / f"shared-{name}"  # the run's workers share it
    folder.mkdir(exist_ok=True)
    root, done = folder / "store", folder / "built"
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not done.exists():
                shutil.rmtree(root, ignore_errors=True)
                build(root)
                done.touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    shutil.copytree(root, own)
    return own


@pytest.fixture(scope="session")
def ingested_sample(tmp_path_factory) -> Path:
    from typer.testing import CliRunner

    from insiderwatch.cli import app

    def build(root: Path) -> None:
        args = ["ingest", "--logs", str(SAMPLE_LOGS), "--store", str(root), "--as-of", "2024-06-29"]
        done = CliRunner().invoke(app, args)
        assert done.exit_code == 0, done.output

    return built_once(tmp_path_factory, "ingested", build)


@pytest.fixture(scope="session")
def reported_store(ingested_sample: Path, tmp_path_factory) -> Path:
    """The ingested sample, detected over two weeks of June with DuckDB and the leavers list
    synced: alerts, findings, ingest counts and leavers (copy it before changing it)."""
    from typer.testing import CliRunner

    from insiderwatch.cli import app

    def build(root: Path) -> None:
        shutil.copytree(ingested_sample, root)
        window = ["--start", REPORT_START.isoformat(), "--end", REPORT_END.isoformat()]
        args = ["run", "--logs", str(SAMPLE_LOGS), "--store", str(root), *window]
        done = CliRunner().invoke(app, args)
        assert done.exit_code == 0, done.output

    return built_once(tmp_path_factory, "reported", build)


# ---------------------------------------------------------------------------------------------
# A local S3 server (moto's standalone server, a dev dependency) for the object-storage tests.
# fsspec and polars both take the endpoint and credentials from the environment, as they would
# from a deployment's.


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """Yields the name of an empty bucket on a running local S3 server."""
    import socket
    import subprocess
    import sys
    import time

    import s3fs

    from deploy.celery_local import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert server.poll() is None and time.monotonic() < deadline, "moto server did not start"
        time.sleep(0.2)
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "insiderwatch-test",
        "AWS_SECRET_ACCESS_KEY": "insiderwatch-test",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        s3fs.S3FileSystem(skip_instance_cache=True).mkdir("insiderwatch-test")
        yield "insiderwatch-test"
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.terminate()
        server.wait(timeout=30)
