"""The pipeline's stages as library calls, each working on a range of days and passing results
through the store (so the daily DAG can run each as its own task):

ingest → quality → features → rules ∥ model → scoring → alerts.
"""

from __future__ import annotations

import time
from datetime import date, timedelta

import polars as pl

from detectors.settings import Tuning
from insiderwatch.alerts import publish
from insiderwatch.config import Config
from insiderwatch.db import Database
from insiderwatch.detect import (
    MODEL_SCHEMA,
    assemble,
    days_between,
    empty_findings,
    history_days,
    run_model,
    run_rules,
)
from insiderwatch.features import ensure_features
from insiderwatch.scoring import ALERT_SCHEMA, score, settings_points
from insiderwatch.store import EventStore

RESULTS = "results"


def features_stage(
    store: EventStore, start: date, end: date, config: Config, tuning: Tuning
) -> list[date]:
    """Features for the range, and for the baseline and training days before it when missing."""
    first = start - timedelta(days=history_days(tuning))
    return ensure_features(store, days_between(first, end), tuning.site(config))


def _write_days(
    store: EventStore, kind: str, frame: pl.DataFrame, start: date, end: date, on: str
) -> None:
    for day in days_between(start, end):
        store.write_partition(RESULTS, kind, day, frame.filter(pl.col(on) == day))


def _read_days(store: EventStore, kind: str, start: date, end: date, schema) -> pl.DataFrame:
    files = [
        p for d in days_between(start, end) if (p := store.partition(RESULTS, kind, d)).exists()
    ]
    if not files:
        return pl.DataFrame(schema=schema)
    return pl.read_parquet(files)


def rules_stage(
    store: EventStore, start: date, end: date, config: Config, tuning: Tuning
) -> pl.DataFrame:
    findings = run_rules(assemble(store, start, end, config, tuning), tuning)
    _write_days(store, "findings", findings, start, end, "local_date")
    return findings


def model_stage(
    store: EventStore, start: date, end: date, config: Config, tuning: Tuning
) -> pl.DataFrame:
    scores = run_model(assemble(store, start, end, config, tuning), tuning)
    _write_days(store, "model", scores, start, end, "local_date")
    return scores


def scoring_stage(
    store: EventStore, start: date, end: date, config: Config, tuning: Tuning
) -> pl.DataFrame:
    findings = _read_days(store, "findings", start, end, empty_findings().schema)
    model = _read_days(store, "model", start, end, MODEL_SCHEMA)
    assembled = assemble(store, start, end, config, tuning)
    days = assembled.evidence.days.collect()
    roster = pl.read_parquet(store.roster_path())
    alerts = score(findings, model, days, roster, tuning.scoring, days_between(start, end))
    _write_days(store, "alerts", alerts, start, end, "alert_date")
    return alerts


def alerts_stage(
    store: EventStore, db: Database, start: date, end: date, run_id: str, tuning: Tuning
) -> int:
    """Publish the scored range to the alert store (replacing it; triage kept)."""
    alerts = _read_days(store, "alerts", start, end, ALERT_SCHEMA)
    findings = _read_days(store, "findings", start, end, empty_findings().schema)
    findings = findings.with_columns(points=settings_points(tuning.scoring))
    return publish(db, alerts, findings, start, end, run_id)


def detect_range(
    store: EventStore,
    db: Database,
    start: date,
    end: date,
    config: Config,
    tuning: Tuning,
    run_id: str,
    timings: dict[str, float] | None = None,
) -> pl.DataFrame:
    """Features, rules and model, scoring and publishing for ``start``–``end`` in one process
    (one evidence assembly shared by rules and model). Stage timings go into ``timings``."""
    timings = timings if timings is not None else {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 3)
        clock = now

    features_stage(store, start, end, config, tuning)
    lap("features")
    assembled = assemble(store, start, end, config, tuning)
    lap("evidence")
    findings = run_rules(assembled, tuning)
    _write_days(store, "findings", findings, start, end, "local_date")
    lap("rules")
    scores = run_model(assembled, tuning)
    _write_days(store, "model", scores, start, end, "local_date")
    lap("model")
    roster = pl.read_parquet(store.roster_path())
    days = assembled.evidence.days.collect()
    alerts = score(findings, scores, days, roster, tuning.scoring, days_between(start, end))
    _write_days(store, "alerts", alerts, start, end, "alert_date")
    lap("scoring")
    publish(
        db,
        alerts,
        findings.with_columns(points=settings_points(tuning.scoring)),
        start,
        end,
        run_id,
    )
    lap("alerts")
    return alerts
