"""One function per task of the daily DAG. Each takes plain values (paths, an ISO day) and
returns a small JSON-able summary, so Airflow passes paths and counts, never frames."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextlib import closing
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from insiderwatch.config import config_for_logs
from insiderwatch.db import Database, default_url, recorded_run
from insiderwatch.store import EventStore, io_path, store_path


class QualityError(RuntimeError):
    """The day's input is not fit to detect on."""


Task = TypeVar("Task", bound=Callable[..., dict[str, Any]])


def _shares_the_store(task: Task) -> Task:
    """Run the task holding the store's lock shared with the DAG's other tasks, so that no
    command-line run writes or sweeps the store meanwhile (insiderwatch.locking)."""
    signature = inspect.signature(task)

    @functools.wraps(task)
    def run(*args: Any, **kwargs: Any) -> dict[str, Any]:
        from insiderwatch.locking import shared_by_tasks

        bound = signature.bind(*args, **kwargs).arguments
        store = bound["store"]
        with shared_by_tasks(store, bound.get("db") or _local_db(store), f"task {task.__name__}"):
            return task(*args, **kwargs)

    return run  # type: ignore[return-value]


def _local_db(store: str) -> str | None:
    from insiderwatch.store import is_url

    return None if is_url(store) else default_url(store)


def _day(day: str) -> date:
    return date.fromisoformat(day)


def _db(store: str, db: str | None) -> Database:
    return Database(db or default_url(store))


@_shares_the_store
def ingest_day(
    logs: str, store: str, db: str | None, day: str, fmt: str = "auto"
) -> dict[str, Any]:
    """Ingest the day's landing files through the quality gate; record the run. A vendor
    format (``fmt``, or told from the files) is staged for that day first."""
    from insiderwatch.adapters import staged_landing
    from insiderwatch.ingest import ingest
    from insiderwatch.quality import QualityGate

    scored = _day(day)
    config = config_for_logs(Path(logs))
    params = {"logs": logs, "day": day, "format": fmt}
    with closing(_db(store, db)) as database, recorded_run(database, "ingest", params) as run:
        with staged_landing(Path(logs), fmt, store, config, scored, scored) as staged:
            report = ingest(
                staged.folder, EventStore(store), config, scored, scored, scored, QualityGate()
            )
        report.warnings[:0] = staged.warnings
        database.record_counts(run.run_id, report.counts)
        run.status = "ok" if report.ok else "failed"
        run.summary = {**report.totals(), "errors": [str(e) for e in report.errors]}
    counts = [c for c in report.counts if c.day == scored]
    return {
        "day": day,
        "run_id": run.run_id,
        "errors": [str(e) for e in report.errors],
        "stored": sum(c.stored for c in counts),
        "quarantined": sum(c.quarantined for c in counts),
        "held_back": sorted(c.source for c in counts if c.gate.startswith("failed")),
    }


def check_quality(summary: dict[str, Any]) -> dict[str, Any]:
    """Stop the day when nothing usable arrived or a file could not be read; a source held
    back by the gate is reported and detection runs on the rest."""
    if summary["errors"]:
        raise QualityError(f"{summary['day']}: unreadable input: {'; '.join(summary['errors'])}")
    if summary["stored"] == 0:
        raise QualityError(f"{summary['day']}: no events stored; nothing to detect on")
    return summary


@_shares_the_store
def features_day(logs: str, store: str, day: str) -> dict[str, Any]:
    from detectors.settings import load_tuning
    from insiderwatch.pipeline import features_stage

    scored = _day(day)
    built = features_stage(
        EventStore(store), scored, scored, config_for_logs(Path(logs)), load_tuning()
    )
    return {"day": day, "built": [d.isoformat() for d in built]}


def plan_shards(day: str, shards: int) -> list[dict[str, Any]]:
    """One item per shard of people, for the DAG's mapped detection tasks."""
    if shards < 1:
        raise ValueError(f"shards must be at least 1, not {shards}")
    return [{"day": day, "shard": k, "shards": shards} for k in range(shards)]


@_shares_the_store
def baselines_day(store: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A shard's evidence rows with their baselines (the shard's people only)."""
    from detectors.settings import load_tuning
    from insiderwatch.pipeline import baselines_shard

    scored = _day(spec["day"])
    rows = baselines_shard(
        EventStore(store), scored, scored, load_tuning(), spec["shard"], spec["shards"]
    )
    return {**spec, "rows": rows}


@_shares_the_store
def fit_models_day(store: str, day: str, shards: int) -> dict[str, Any]:
    """The day's isolation forest: the one its retraining day kept, or fitted once on every
    shard's training rows."""
    from detectors.settings import load_tuning
    from insiderwatch.pipeline import fit_shard_models

    scored = _day(day)
    fitted = fit_shard_models(EventStore(store), scored, scored, load_tuning(), shards)
    return {"day": day, "shards": shards, "models": fitted}


@_shares_the_store
def detect_day(logs: str, store: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Rules and model scores for one shard's people."""
    from detectors.settings import load_tuning
    from insiderwatch.pipeline import detect_shard

    scored = _day(spec["day"])
    counts = detect_shard(
        EventStore(store),
        scored,
        scored,
        config_for_logs(Path(logs)),
        load_tuning(),
        spec["shard"],
        spec["shards"],
    )
    return {**spec, **counts}


@_shares_the_store
def score_day(store: str, day: str, shards: int) -> dict[str, Any]:
    """Every shard's findings and scores ranked together under the day's review budget."""
    from detectors.settings import load_tuning
    from insiderwatch.pipeline import combine_shards

    scored = _day(day)
    alerts = combine_shards(EventStore(store), scored, scored, load_tuning(), shards)
    return {"day": day, "alerts": alerts.height, "budgeted": int(alerts["budgeted"].sum())}


@_shares_the_store
def publish_day(store: str, db: str | None, day: str) -> dict[str, Any]:
    from detectors.settings import load_tuning
    from insiderwatch.pipeline import alerts_stage

    scored = _day(day)
    with closing(_db(store, db)) as database, recorded_run(database, "detect", {"day": day}) as run:
        written = alerts_stage(
            EventStore(store), database, scored, scored, run.run_id, load_tuning()
        )
        run.summary = {"alerts": written}
    return {"day": day, "alerts": written}


def lookback_request(store: str, conf: dict[str, Any]) -> dict[str, Any]:
    """Check an HR-triggered lookback request; returns it as plain values or raises
    ``LookbackError`` naming the field. Nothing is written."""
    import polars as pl

    from insiderwatch.lookback import LookbackError, validate_request

    roster_path = EventStore(store).roster_path()
    if not roster_path.exists():
        raise LookbackError(f"no roster in {store}; the daily run has not ingested yet")
    fields = {k: conf.get(k) for k in ("user", "notice_date", "last_day", "months")}
    fields = {k: v for k, v in fields.items() if v not in (None, "")}
    request = validate_request(fields, pl.read_parquet(io_path(roster_path)))
    return {
        "user": request.user,
        "notice_date": request.notice_date.isoformat(),
        "last_day": request.last_day.isoformat() if request.last_day else None,
        "months": request.months,
    }


@_shares_the_store
def lookback_report(logs: str, store: str, request: dict[str, Any]) -> dict[str, Any]:
    """Run a validated lookback and write its tables under ``<store>/lookbacks/``."""
    from insiderwatch.leavers import write_lookback
    from insiderwatch.lookback import LookbackRequest

    checked = LookbackRequest(
        request["user"],
        _day(request["notice_date"]),
        _day(request["last_day"]) if request["last_day"] else None,
        request["months"],
    )
    folder, result = write_lookback(EventStore(store), checked, config_for_logs(Path(logs)))
    return {"folder": str(folder), "verdict": result.verdict}


@_shares_the_store
def leavers_day(logs: str, store: str, db: str | None, day: str) -> dict[str, Any]:
    """Refresh the leavers list as of the day; start lookbacks for new notices."""
    from insiderwatch.leavers import sync_leavers

    database = _db(store, db)
    updates = sync_leavers(EventStore(store), database, config_for_logs(Path(logs)), _day(day))
    database.close()
    return {
        "day": day,
        "leavers": len(updates),
        "lookbacks_started": [u.user for u in updates if u.started_lookback],
    }


@_shares_the_store
def reports_day(logs: str, store: str, db: str | None, day: str) -> dict[str, Any]:
    """Write the day's security and supervisor reports (and the inbound digest at the end
    of a month or quarter)."""
    from insiderwatch.digest import periods_ending, write_digest
    from insiderwatch.reports import write_daily_reports

    config = config_for_logs(Path(logs))
    database = _db(store, db)
    try:
        written = write_daily_reports(EventStore(store), database, _day(day), config)
    finally:
        database.close()
    digests = [
        str(write_digest(EventStore(store), period, config)) for period in periods_ending(_day(day))
    ]
    return {
        "day": day,
        "folder": str(written.folder),
        "alerts": written.alerts,
        "supervisor_reports": len(written.supervisors),
        "unrouted": written.unrouted,
        "digests": digests,
    }


@_shares_the_store
def send_day(logs: str, store: str, db: str | None, folder: str) -> dict[str, Any]:
    """Mail the written reports when ``smtp.enabled``; otherwise say so and send nothing."""
    from insiderwatch.delivery import load_reports, send_reports

    config = config_for_logs(Path(logs))
    if not config.smtp.enabled:
        return {"sent": 0, "skipped": "smtp.enabled is false"}
    database = _db(store, db)
    try:
        deliveries = send_reports(load_reports(store_path(folder)), config, database)
    finally:
        database.close()
    counted: dict[str, int] = {}
    for delivery in deliveries:
        counted[delivery.status] = counted.get(delivery.status, 0) + 1
    return {"sent": counted.get("sent", 0) + counted.get("updated", 0), "by_status": counted}
