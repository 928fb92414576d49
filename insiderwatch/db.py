"""The SQL side of the store: runs, ingest counts, alerts, findings and triage history.

DuckDB file by default; the same statements run on PostgreSQL when given a ``postgresql://``
URL. Statements use ``?`` parameter markers, rewritten to ``%s`` for psycopg.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any


class DatabaseError(RuntimeError):
    """The alert store cannot be opened (in use by another process, unreachable, not a
    database); the message names it and says why in one line."""


SCHEMA = (
    """CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        started_at TIMESTAMP NOT NULL,
        finished_at TIMESTAMP,
        status TEXT NOT NULL,
        params TEXT,
        summary TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS ingest_counts (
        run_id TEXT NOT NULL,
        source TEXT NOT NULL,
        day DATE,
        files INTEGER NOT NULL,
        rows_read BIGINT NOT NULL,
        stored BIGINT NOT NULL,
        quarantined BIGINT NOT NULL,
        duplicates BIGINT NOT NULL,
        gate TEXT
    )""",
    # One row per alerting user-day; alert_id is stable across reruns of the day.
    """CREATE TABLE IF NOT EXISTS alerts (
        alert_id TEXT PRIMARY KEY,
        alert_date DATE NOT NULL,
        user_id TEXT NOT NULL,
        name TEXT,
        department TEXT,
        supervisor TEXT,
        score INTEGER NOT NULL,
        severity TEXT NOT NULL,
        rank INTEGER NOT NULL,
        budgeted BOOLEAN NOT NULL,
        detectors TEXT NOT NULL,
        reasons TEXT NOT NULL,
        evidence TEXT NOT NULL,
        model_score DOUBLE PRECISION,
        drivers TEXT NOT NULL,
        status TEXT NOT NULL,
        run_id TEXT
    )""",
    # One row per detector hit, alerting or not.
    """CREATE TABLE IF NOT EXISTS findings (
        finding_id TEXT PRIMARY KEY,
        alert_id TEXT,
        alert_date DATE NOT NULL,
        user_id TEXT NOT NULL,
        detector TEXT NOT NULL,
        severity TEXT NOT NULL,
        points DOUBLE PRECISION NOT NULL,
        channel TEXT,
        value DOUBLE PRECISION,
        reason TEXT NOT NULL,
        evidence TEXT NOT NULL,
        run_id TEXT
    )""",
    # People on notice as of the latest run, with their lookback's outcome.
    """CREATE TABLE IF NOT EXISTS leavers (
        user_id TEXT PRIMARY KEY,
        name TEXT,
        department TEXT,
        supervisor TEXT,
        notice_date DATE NOT NULL,
        last_day DATE,
        lookback_status TEXT NOT NULL,
        lookback_verdict TEXT,
        lookback_folder TEXT,
        open_alerts INTEGER NOT NULL,
        as_of DATE NOT NULL
    )""",
    # Reports sent by mail, with a digest of the content, so a rerun sends nothing twice.
    """CREATE TABLE IF NOT EXISTS deliveries (
        day DATE NOT NULL,
        recipient TEXT NOT NULL,
        report TEXT NOT NULL,
        digest TEXT NOT NULL,
        sent_at TIMESTAMP NOT NULL,
        PRIMARY KEY (day, recipient, report)
    )""",
    # Triage history; the latest row per alert is its status, and survives reruns.
    """CREATE TABLE IF NOT EXISTS triage (
        alert_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        status TEXT NOT NULL,
        note TEXT,
        actor TEXT,
        changed_at TIMESTAMP NOT NULL,
        PRIMARY KEY (alert_id, seq)
    )""",
)


def _polars_types() -> dict[str, Any]:
    import polars as pl

    return {
        "VARCHAR": pl.String,
        "DATE": pl.Date,
        "DOUBLE": pl.Float64,
        "BOOLEAN": pl.Boolean,
        "INTEGER": pl.Int64,
        "BIGINT": pl.Int64,
        "TIMESTAMP": pl.Datetime("us"),
    }


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith(("postgresql://", "postgres://")):
            import psycopg

            try:
                self._conn = psycopg.connect(url, autocommit=True)
            except psycopg.OperationalError as exc:
                reason = " ".join(str(exc).split())
                raise DatabaseError(
                    f"cannot open the alert store {_shown_url(url)}: {reason}"
                ) from None
            self._pg = True
        else:
            import duckdb

            path = url.removeprefix("duckdb:///").removeprefix("duckdb://")
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            try:
                self._conn = duckdb.connect(path)
            except duckdb.Error as exc:
                reason = " ".join(str(exc).split())
                raise DatabaseError(f"cannot open the alert store {path}: {reason}") from exc
            self._pg = False
        for statement in SCHEMA:
            self.execute(statement)

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._pg else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if self._pg:
            with self._conn.cursor() as cur:
                cur.execute(self._sql(sql), params)
        else:
            self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        if self._pg:
            with self._conn.cursor() as cur:
                cur.executemany(self._sql(sql), rows)
        else:
            self._conn.executemany(sql, rows)

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Append ``rows`` (values in ``columns`` order) to ``table`` in one bulk load: COPY on
        PostgreSQL; on DuckDB a frame typed from the table's own columns, inserted in one
        statement (DuckDB's ``executemany`` runs a statement a row, about 600 rows a second).
        Returns the rows written."""
        rows = list(rows)
        if not rows:
            return 0
        names = ", ".join(columns)
        if self._pg:
            with self._conn.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return len(rows)
        import polars as pl

        declared = {c: t for c, t, *_ in self._conn.execute(f"DESCRIBE {table}").fetchall()}
        schema = {c: _polars_types().get(declared[c], pl.String) for c in columns}
        frame = pl.DataFrame(rows, schema=schema, orient="row", strict=False)
        self._conn.register("_insert_rows", frame)
        try:
            self._conn.execute(f"INSERT INTO {table} ({names}) SELECT * FROM _insert_rows")
        finally:
            self._conn.unregister("_insert_rows")
        return len(rows)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self._pg:
            with self._conn.cursor() as cur:
                cur.execute(self._sql(sql), params)
                return list(cur.fetchall())
        return self._conn.execute(sql, params).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All statements inside commit together or not at all."""
        if self._pg:
            with self._conn.transaction():
                yield
            return
        self._conn.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    @property
    def is_postgres(self) -> bool:
        return self._pg

    def close(self) -> None:
        self._conn.close()

    # --- runs ---------------------------------------------------------------------------------

    def start_run(
        self, run_id: str, kind: str, started_at: datetime, params: dict[str, Any]
    ) -> None:
        self.execute(
            "INSERT INTO runs (run_id, kind, started_at, status, params) "
            "VALUES (?, ?, ?, 'running', ?)",
            (run_id, kind, started_at, json.dumps(params, default=str)),
        )

    def finish_run(
        self, run_id: str, finished_at: datetime, status: str, summary: dict[str, Any]
    ) -> None:
        self.execute(
            "UPDATE runs SET finished_at = ?, status = ?, summary = ? WHERE run_id = ?",
            (finished_at, status, json.dumps(summary, default=str, ensure_ascii=False), run_id),
        )

    def record_counts(self, run_id: str, counts: Iterable[Any]) -> None:
        self.insert(
            "ingest_counts",
            (
                "run_id",
                "source",
                "day",
                "files",
                "rows_read",
                "stored",
                "quarantined",
                "duplicates",
                "gate",
            ),
            [
                (
                    run_id,
                    c.source,
                    c.day,
                    c.files,
                    c.read,
                    c.stored,
                    c.quarantined,
                    c.duplicates,
                    c.gate,
                )
                for c in counts
            ],
        )


def _shown_url(url: str) -> str:
    """A database URL without its password."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.split(':')[0]}@{tail}"


@dataclass
class RunRecord:
    """A run being recorded: set ``status`` and ``summary`` before the block ends."""

    run_id: str
    status: str = "ok"
    summary: dict[str, Any] = field(default_factory=dict)


@contextmanager
def recorded_run(database: Database, kind: str, params: dict[str, Any]) -> Iterator[RunRecord]:
    """Record a run in ``runs``: started now, closed when the block ends however it ends (an
    exception closes it as ``failed`` with the error, Ctrl-C as ``interrupted``). A run killed
    outright cannot close its record; the next run to take the store's lock does."""
    run = RunRecord(uuid.uuid4().hex[:12])
    database.start_run(run.run_id, kind, datetime.now(), params)
    try:
        yield run
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        summary = {**run.summary}
        summary.setdefault("error", str(exc) or type(exc).__name__)
        database.finish_run(run.run_id, datetime.now(), status, summary)
        raise
    database.finish_run(run.run_id, datetime.now(), run.status, run.summary)


def default_url(store_root: str | Path) -> str:
    """The embedded alert store: ``alerts.duckdb`` in the event store's folder. A store on
    object storage has no such folder; it needs an alert store named (PostgreSQL)."""
    from insiderwatch.store import is_url

    if is_url(store_root):
        raise ValueError(
            f"the event store {store_root} is on object storage, where DuckDB cannot keep the "
            "alert store: give one with --db / INSIDERWATCH_DB (a postgresql:// URL or a local "
            "DuckDB file)"
        )
    return str(Path(store_root) / "alerts.duckdb")
