"""One writing run per store at a time.

Every command that writes to a store holds its lock from start to end: on a local store a
``flock`` on ``<store>/.lock``; with a PostgreSQL alert store also a session advisory lock keyed
on the store, so runs on different machines sharing the store exclude each other too. Both are
released by the kernel or the server when the holder dies, however it dies, so a killed run's
lock is never left behind; the holder's details (command, pid, host, start) are written beside
the lock only to name it to whoever is kept waiting.

Taking the lock also clears what a killed run left: its temporary files (every store write goes
to a hidden ``.*.tmp`` beside its target and is then moved into place) and its run records
still marked ``running``, which are closed as ``interrupted``.

The daily DAG's tasks take the lock shared (:func:`shared_by_tasks`): a DAG run's shards work
side by side on the store, and no command-line run sweeps the store under them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from insiderwatch.store import is_url

LOCK_FILE = ".lock"


class StoreBusy(RuntimeError):
    """Another run holds the store's lock; the message names it."""


def _holder(command: str) -> dict[str, Any]:
    return {
        "command": command,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.now().isoformat(timespec="seconds"),
    }


def _describe(store: str, holder: dict[str, Any] | None) -> str:
    if not holder:
        return f"the store {store} is being written by another run"
    return (
        f"the store {store} is being written by `{holder.get('command')}` (pid "
        f"{holder.get('pid')} on {holder.get('host')}, since {holder.get('started')}); "
        "wait for it to finish and run again"
    )


def store_key(store: str) -> int:
    """The advisory-lock key of a store: a signed 64-bit number drawn from its location."""
    where = store if is_url(store) else str(Path(store).resolve())
    return int.from_bytes(hashlib.sha256(where.encode()).digest()[:8], "big", signed=True)


@contextmanager
def _file_lock(root: Path, holder: dict[str, Any], wait: float, shared: bool) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreBusy(_describe(str(root), _read_holder(path))) from None
                time.sleep(0.2)
        if not shared:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder).encode(), 0)
        try:
            yield
        finally:
            if not shared:
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_holder(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        return None


@contextmanager
def _advisory_lock(
    url: str, store: str, holder: dict[str, Any], wait: float, shared: bool
) -> Iterator[None]:
    """A PostgreSQL session advisory lock on the store, held by a connection of its own."""
    import psycopg

    key = store_key(store)
    kind = "_shared" if shared else ""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS store_locks (store_key BIGINT PRIMARY KEY, "
            "store TEXT NOT NULL, holder TEXT NOT NULL)"
        )
        deadline = time.monotonic() + wait
        while not conn.execute(f"SELECT pg_try_advisory_lock{kind}(%s)", (key,)).fetchone()[0]:
            if time.monotonic() >= deadline:
                row = conn.execute(
                    "SELECT holder FROM store_locks WHERE store_key = %s", (key,)
                ).fetchone()
                raise StoreBusy(_describe(store, json.loads(row[0]) if row else None))
            time.sleep(0.2)
        if not shared:
            conn.execute(
                "INSERT INTO store_locks (store_key, store, holder) VALUES (%s, %s, %s) "
                "ON CONFLICT (store_key) DO UPDATE SET store = EXCLUDED.store, "
                "holder = EXCLUDED.holder",
                (key, store, json.dumps(holder)),
            )
        try:
            yield
        finally:
            conn.execute(f"SELECT pg_advisory_unlock{kind}(%s)", (key,))


def sweep_temporary(root: Path) -> int:
    """Remove what killed runs left under ``root``: hidden ``.*.tmp`` files and folders.
    Returns how many were removed."""
    removed = 0
    for top, dirs, names in os.walk(root):
        for name in [d for d in dirs if d.startswith(".") and d.endswith(".tmp")]:
            shutil.rmtree(Path(top) / name, ignore_errors=True)
            dirs.remove(name)
            removed += 1
        for name in names:
            if name.startswith(".") and name.endswith(".tmp"):
                (Path(top) / name).unlink(missing_ok=True)
                removed += 1
    return removed


@contextmanager
def writing(store: str, db_url: str | None, command: str, wait: float = 0.0) -> Iterator[None]:
    """Hold ``store``'s lock while the body writes; :class:`StoreBusy` if another run holds it
    (after waiting up to ``wait`` seconds). On taking it, clears a killed run's leftovers."""
    holder = _holder(command)
    with _locks(store, db_url, holder, wait, shared=False):
        if not is_url(store) and Path(store).exists():
            sweep_temporary(Path(store))
        if db_url is not None:
            _close_interrupted_runs(db_url)
        yield


@contextmanager
def shared_by_tasks(store: str, db_url: str | None, task: str, wait: float = 0.0) -> Iterator[None]:
    """The lock as a DAG task holds it: shared with the other tasks, exclusive of any
    command-line run. A store on object storage with no PostgreSQL alert store named to the
    task has nothing to lock (the DAG runs one at a time: ``max_active_runs=1``)."""
    with _locks(store, db_url, _holder(task), wait, shared=True):
        yield


@contextmanager
def _locks(
    store: str, db_url: str | None, holder: dict[str, Any], wait: float, shared: bool
) -> Iterator[None]:
    postgres = db_url is not None and db_url.startswith(("postgresql://", "postgres://"))
    if is_url(store):
        if not postgres:
            if shared:
                yield
                return
            # pragma: no cover - default_url refuses a store URL without --db
            raise StoreBusy(f"the store {store} is on object storage: it needs a PostgreSQL --db")
        with _advisory_lock(db_url, store, holder, wait, shared):
            yield
        return
    with _file_lock(Path(store), holder, wait, shared):
        if postgres:
            with _advisory_lock(db_url, store, holder, wait, shared):
                yield
        else:
            yield


def _close_interrupted_runs(db_url: str) -> None:
    """Runs still marked ``running`` while this run holds the lock were killed: say so."""
    from insiderwatch.db import Database

    database = Database(db_url)
    try:
        summary = {"error": "the run ended without closing its record: it was killed"}
        database.execute(
            "UPDATE runs SET status = 'interrupted', finished_at = ?, summary = ? "
            "WHERE status = 'running'",
            (datetime.now(), json.dumps(summary)),
        )
    finally:
        database.close()
