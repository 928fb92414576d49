"""kill -9 at seeded random points of ``insiderwatch run``, each followed by a rerun that must
leave the store exactly as one uninterrupted run does, with nothing left over. The kills are
split over two test files so that both test workers share them: the files are named to be
collected first and the suite runs with ``--no-loadscope-reorder``, so each worker starts on
one of them rather than one worker taking both at the end."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from insiderwatch.db import Database, default_url

REPO = Path(__file__).resolve().parent.parent
AS_OF = "2024-05-10"
USERS, DAYS, SEED = 40, 35, 7
KILLS_PER_FILE = 10


def make_logs(folder: Path) -> Path:
    if not (folder / "hr" / "employees.csv").exists():
        _cli(
            "samples", "generate", "--out", str(folder), "--users", str(USERS),
            "--days", str(DAYS), "--seed", str(SEED),
        )  # fmt: skip
    return folder


def _command(logs: Path, store: Path, db_url: str | None = None) -> list[str]:
    return [
        sys.executable, "-m", "insiderwatch.cli", "run", "--logs", str(logs),
        "--store", str(store), "--as-of", AS_OF, *(["--db", db_url] if db_url else []),
    ]  # fmt: skip


def _cli(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "insiderwatch.cli", *args],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=600,
    )


def run_to_the_end(logs: Path, store: Path, db_url: str | None = None) -> float:
    started = time.monotonic()
    done = subprocess.run(
        _command(logs, store, db_url), cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return time.monotonic() - started


def run_and_kill(logs: Path, store: Path, after: float, db_url: str | None = None) -> bool:
    """Start a run and SIGKILL its whole process group ``after`` seconds in; False when the
    run had already finished by then."""
    process = subprocess.Popen(
        _command(logs, store, db_url),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        process.wait(timeout=after)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return True


def kill_points(seed: int, duration: float) -> list[float]:
    rng = random.Random(seed)
    return sorted(round(rng.uniform(0.5, duration), 2) for _ in range(KILLS_PER_FILE))


def snapshot(store: Path, db_url: str | None = None) -> dict[str, object]:
    """Everything a run leaves that a rerun must reproduce: the alert store's tables (but not
    the run log), every Parquet file's rows, and the lookbacks' files."""
    db = Database(db_url or default_url(store))
    try:
        tables = {
            "alerts": db.query(
                "SELECT alert_id, alert_date, user_id, score, severity, rank, budgeted, "
                "detectors, reasons, evidence, status FROM alerts ORDER BY alert_id"
            ),
            "findings": db.query(
                "SELECT finding_id, alert_id, detector, points, reason, evidence FROM findings "
                "ORDER BY finding_id"
            ),
            "leavers": db.query(
                "SELECT user_id, notice_date, last_day, lookback_status, lookback_verdict, "
                "open_alerts, as_of FROM leavers ORDER BY user_id"
            ),
        }
    finally:
        db.close()
    frames = {
        str(path.relative_to(store)): pl.read_parquet(path).rows()
        for path in sorted(store.rglob("*.parquet"))
    }
    lookbacks = {
        str(path.relative_to(store)): path.read_bytes() if path.suffix == ".txt" else None
        for path in sorted((store / "lookbacks").rglob("*"))
    }
    return {"tables": tables, "frames": frames, "lookbacks": lookbacks}


def leftovers(store: Path) -> list[str]:
    return sorted(str(p.relative_to(store)) for p in store.rglob(".*") if p.name != ".lock")


def open_runs(store: Path, db_url: str | None = None) -> list[tuple]:
    db = Database(db_url or default_url(store))
    try:
        return db.query("SELECT run_id, kind FROM runs WHERE status = 'running'")
    finally:
        db.close()


def reference(tmp_path_factory) -> tuple[Path, dict, float]:
    """The landing folder, what one uninterrupted run leaves, and how long it took; built once
    per test run however many workers ask."""
    from tests.conftest import built_once

    def build(root: Path) -> None:
        logs = make_logs(root / "logs")
        seconds = run_to_the_end(logs, root / "store")
        (root / "seconds").write_text(f"{seconds:.2f}")

    root = built_once(tmp_path_factory, "kill-reference", build)
    return root / "logs", snapshot(root / "store"), float((root / "seconds").read_text())


def check_kills(seed: int, tmp_path_factory, tmp_path: Path, db_url: str | None = None) -> int:
    """The kills of one file, on the store's DuckDB or on ``db_url`` (PostgreSQL), against
    an uninterrupted run on DuckDB; returns how many there were (each inside a run)."""
    logs, expected, duration = reference(tmp_path_factory)
    store = tmp_path / "killed"
    killed = 0
    for after in kill_points(seed, duration):
        # The reference's duration may have been measured on a busier machine: a run that
        # ends before its kill point is tried again with an earlier one.
        while not run_and_kill(logs, store, after, db_url):
            after = round(after * 0.6, 2)
        killed += 1
        run_to_the_end(logs, store, db_url)
        assert leftovers(store) == [], f"after a kill at {after} s"
        assert open_runs(store, db_url) == [], f"after a kill at {after} s"
        got = snapshot(store, db_url)
        assert got == expected, f"the rerun after a kill at {after} s differs"
    return killed


def check_concurrent(tmp_path_factory, tmp_path: Path, db_url: str | None = None) -> None:
    """Two real runs on one store: the second, started while the first holds the lock, exits
    at once naming it; the first goes on to leave what an uninterrupted run leaves."""
    import json

    logs, expected, _ = reference(tmp_path_factory)
    store = tmp_path / "concurrent"
    first = subprocess.Popen(
        _command(logs, store, db_url), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    lock = store / ".lock"
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.read_text()):
        assert first.poll() is None and time.monotonic() < deadline, "the first run never locked"
        time.sleep(0.05)
    assert json.loads(lock.read_text())["pid"] == first.pid
    second = subprocess.run(
        _command(logs, store, db_url),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert first.poll() is None, "the first run ended before the second tried the lock"
    assert second.returncode == 1
    assert f"is being written by `insiderwatch run` (pid {first.pid} on " in second.stdout
    assert "Traceback" not in second.stdout + second.stderr
    assert first.wait(timeout=600) == 0
    assert snapshot(store, db_url) == expected
