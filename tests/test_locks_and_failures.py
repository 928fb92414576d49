"""One writing run per store, on DuckDB and on PostgreSQL; runs that fail or are killed are
closed as such; failures of the machine end in one line naming the file or resource."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from insiderwatch.db import Database, default_url
from insiderwatch.locking import StoreBusy, writing
from tests.conftest import LOGON_HEADER, REPO, csv_text, logon_rows

LOGON = "logon/2024-04-01.csv"

_HOLD = """
import sys, time
from datetime import datetime
from insiderwatch.locking import writing
from insiderwatch.db import Database, recorded_run
store, url, record = sys.argv[1], sys.argv[2] or None, sys.argv[3] == "record"
with writing(store, url, "insiderwatch run"):
    if record:
        database = Database(url)
        recording = recorded_run(database, "ingest", {})
        recording.__enter__()
    print("held", flush=True)
    time.sleep(120)
"""


@contextmanager
def holder(store: str, url: str | None, record: bool = False) -> Iterator[subprocess.Popen]:
    """Another process holding the store's lock until the block ends (it is then killed)."""
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLD, store, url or "", "record" if record else ""],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout.readline().strip() == "held"
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def take_and_release(store: str, url: str) -> None:
    with writing(store, url, "insiderwatch run") as held:
        assert held is None  # taken: nothing else to do with it


def cli(*args: str, limit_file_bytes: int | None = None) -> subprocess.CompletedProcess:
    def limits() -> None:
        if limit_file_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_bytes, limit_file_bytes))

    return subprocess.run(
        [sys.executable, "-m", "insiderwatch.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limits,
        env={**os.environ, "COLUMNS": "200"},
    )


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    errors = [line for line in done.stdout.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stdout
    return errors[0]


@pytest.fixture
def logs(landing) -> Path:
    return landing({LOGON: csv_text(LOGON_HEADER, logon_rows(40))})


def _ingest(logs: Path, store: Path, *extra: str, **options) -> subprocess.CompletedProcess:
    return cli(
        "ingest", "--logs", str(logs), "--store", str(store), "--as-of", "2024-04-30", *extra,
        **options,
    )  # fmt: skip


def test_a_second_run_on_a_busy_duckdb_store_exits_naming_the_holder(
    logs: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    with holder(str(store), default_url(store)) as other:
        done = _ingest(logs, store)
        assert done.returncode == 1
        line = one_line_error(done)
        assert f"is being written by `insiderwatch run` (pid {other.pid} on " in line
        assert not (store / "events").exists()
    # Killed outright, the holder leaves no lock behind: the next run goes ahead.
    assert _ingest(logs, store).returncode == 0


def test_runs_sharing_a_store_through_postgresql_exclude_each_other(
    logs: Path, tmp_path: Path, postgres_url: str
) -> None:
    store = tmp_path / "store"
    with holder(str(store), postgres_url):
        done = cli(
            "run", "--logs", str(logs), "--store", str(store), "--db", postgres_url,
            "--as-of", "2024-04-30",
        )  # fmt: skip
        assert done.returncode == 1
        assert "is being written by `insiderwatch run`" in one_line_error(done)
    # On object storage there is no file to lock: the advisory lock alone keeps runs apart.
    remote = "s3://insiderwatch-test/shared-store"
    with holder(remote, postgres_url) as other, pytest.raises(StoreBusy, match=f"pid {other.pid} "):
        take_and_release(remote, postgres_url)
    take_and_release(remote, postgres_url)  # released when its holder was killed


@pytest.mark.parametrize("backend", ["duckdb", "postgresql"])
def test_a_killed_run_s_record_is_closed_as_interrupted_by_the_next(
    backend: str, logs: Path, tmp_path: Path, request
) -> None:
    store = tmp_path / "store"
    url = default_url(store) if backend == "duckdb" else request.getfixturevalue("postgres_url")
    with holder(str(store), url, record=True):
        pass  # killed with its run still recorded as running
    database = Database(url)
    assert database.query("SELECT status FROM runs") == [("running",)]
    database.close()
    args = ["run", "--logs", str(logs), "--store", str(store), "--db", url, "--as-of", "2024-04-30"]
    assert cli(*args).returncode in (0, 1)
    database = Database(url)
    statuses = database.query("SELECT kind, status FROM runs ORDER BY started_at")
    database.close()
    assert statuses[0] == ("ingest", "interrupted")
    assert "running" not in {status for _, status in statuses}


def test_a_failed_run_is_recorded_as_failed(tmp_path: Path) -> None:
    from insiderwatch.db import recorded_run

    database = Database(str(tmp_path / "alerts.duckdb"))
    with pytest.raises(ZeroDivisionError), recorded_run(database, "detect", {}):
        _ = 1 / 0
    assert database.query("SELECT status, summary FROM runs") == [
        ("failed", '{"error": "division by zero"}')
    ]
    database.close()


def test_a_full_disk_ends_in_one_line(logs: Path, tmp_path: Path) -> None:
    """The file-size limit stands in for a full disk: every write past it fails (EFBIG)."""
    done = _ingest(logs, tmp_path / "store", limit_file_bytes=4096)
    assert done.returncode == 1
    assert "File too large" in one_line_error(done)


@pytest.fixture
def read_only_store(logs: Path, tmp_path: Path) -> Iterator[Path]:
    """A store on a file system remounted read-only after a first ingest (needs root)."""
    mount = tmp_path / "mount"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mount)]).returncode != 0:
        pytest.skip("mounting a file system is not permitted here")
    try:
        assert _ingest(logs, mount / "store").returncode == 0
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount / "store"
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_read_only_store_ends_in_one_line_naming_it(logs: Path, read_only_store: Path) -> None:
    done = _ingest(logs, read_only_store)
    assert done.returncode == 1
    line = one_line_error(done)
    assert str(read_only_store) in line and "Read-only file system" in line


def test_an_alert_store_in_use_by_another_process_ends_in_one_line(tmp_path: Path) -> None:
    """A DuckDB file another process holds open (a console, a notebook) cannot be opened."""
    db_file = tmp_path / "alerts.duckdb"
    script = textwrap.dedent(
        f"""
        import duckdb, time
        conn = duckdb.connect({str(db_file)!r})
        print("open", flush=True)
        time.sleep(120)
        """
    )
    other = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "open"
        done = cli("alerts", "list", "--db", str(db_file))
        assert done.returncode == 1
        line = one_line_error(done)
        assert f"cannot open the alert store {db_file}" in line
    finally:
        other.kill()
        other.wait()
