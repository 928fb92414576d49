"""The pipeline's stages as library calls, each working on a range of days and passing results
through the store:

ingest → quality → features → rules and model → scoring → alerts.

``detect_range`` runs detection in one process (the CLI, notebooks); the daily DAG runs the
same steps over shards of people (below), so that workers can share the heavy part.
"""

from __future__ import annotations

import pickle
import time
import zlib
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from detectors.models.isolation_forest import COLUMNS as DEVIATION_COLUMNS
from detectors.settings import Tuning
from insiderwatch.alerts import publish
from insiderwatch.config import Config
from insiderwatch.db import Database
from insiderwatch.detect import (
    KEY,
    MODEL_SCHEMA,
    assemble,
    days_between,
    empty_findings,
    evidence_rows,
    forests_kept,
    history_days,
    kept_forests,
    model_rows,
    run_model,
    run_rules,
    training_days,
    with_events,
)
from insiderwatch.features import USER_DAY, ensure_baselines, ensure_features
from insiderwatch.scoring import ALERT_SCHEMA, score, settings_points
from insiderwatch.store import (
    EventStore,
    io_path,
    io_paths,
    remove_tree,
    write_atomic,
    write_bytes_atomic,
)

RESULTS = "results"
DAY_SCHEMA = {"user": pl.String, "local_date": pl.Date}


def features_stage(
    store: EventStore, start: date, end: date, config: Config, tuning: Tuning
) -> list[date]:
    """Features for the range, and for the baseline and training days before it, when
    missing; then the baselines of the range and its training days (kept per day)."""
    first = start - timedelta(days=history_days(tuning))
    built = ensure_features(store, days_between(first, end), tuning.site(config))
    b = tuning.baseline
    trained = start - timedelta(days=training_days(tuning))
    ensure_baselines(
        store, days_between(trained, end), b.window_days, b.min_history_days, b.min_peer_size
    )
    return built


def _write_days(
    store: EventStore, kind: str, frame: pl.DataFrame, start: date, end: date, on: str
) -> None:
    for day in days_between(start, end):
        store.write_partition(RESULTS, kind, day, frame.filter(pl.col(on) == day))


def _read_days(store: EventStore, kind: str, start: date, end: date, schema) -> pl.DataFrame:
    files = store.existing(RESULTS, kind, days_between(start, end))
    if not files:
        return pl.DataFrame(schema=schema)
    return pl.read_parquet(io_paths(files))


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
    # With the range's models kept, their training rows are not read (a daily run's case).
    training = not forests_kept(store, start, end, tuning)
    assembled = assemble(store, start, end, config, tuning, training=training)
    lap("evidence")
    findings = run_rules(assembled, tuning)
    _write_days(store, "findings", findings, start, end, "local_date")
    lap("rules")
    frame = assembled.frame
    forests = kept_forests(store, model_rows(frame), start, end, tuning) if frame.height else {}
    scores = run_model(assembled, tuning, forests)
    _write_days(store, "model", scores, start, end, "local_date")
    lap("model")
    roster = pl.read_parquet(io_path(store.roster_path()))
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


# ---------------------------------------------------------------------------------------------
# Detection over shards of people
#
# The daily DAG can split detection over workers. A person belongs to one shard (a stable hash
# of the user id), and the steps are arranged so that every shard's results are exactly the
# rows the single-process run would give for those people:
#
#   baselines (per shard) → fit models (once, on every shard's training rows)
#   → rules and model scores (per shard) → combine and score (once: ranks and the review
#   budget span everyone).
#
# Peer baselines are drawn from everyone's features in each shard (a sum per peer group and
# day, cheap); a person's own baselines, the events and the rules only touch the shard.
# Intermediate files live under ``<store>/work/`` and are removed once the range is scored.


def shard_of(user: str, shards: int) -> int:
    """The shard a person belongs to: the same on every machine and run."""
    return zlib.crc32(user.encode()) % shards


def shard_users(
    store: EventStore, start: date, end: date, tuning: Tuning, shard: int, shards: int
) -> list[str]:
    """Everyone with features in the range and its history, or on the roster, in ``shard``."""
    first = start - timedelta(days=history_days(tuning))
    files = store.existing("features", USER_DAY, days_between(first, end))
    users = (
        set(pl.scan_parquet(io_paths(files)).select("user").unique().collect()["user"])
        if files
        else set()
    )
    if store.roster_path().exists():
        users |= set(pl.read_parquet(io_path(store.roster_path()), columns=["user"])["user"])
    return sorted(u for u in users if shard_of(u, shards) == shard)


def shard_folder(store: EventStore, start: date, end: date, shards: int) -> Path:
    return store.root / "work" / f"detect-{start.isoformat()}-{end.isoformat()}-{shards}-shards"


def _shard_file(folder: Path, kind: str, shard: int) -> Path:
    return folder / f"{kind}-{shard:03d}.parquet"


def _evidence(folder: Path, shard: int) -> pl.DataFrame:
    return pl.read_parquet(io_path(_shard_file(folder, "evidence", shard)))


def baselines_shard(
    store: EventStore, start: date, end: date, tuning: Tuning, shard: int, shards: int
) -> int:
    """A shard's evidence rows (training days, unless the range's models are kept, and scored
    days, with baselines); returns rows."""
    users = shard_users(store, start, end, tuning, shard, shards)
    training = not forests_kept(store, start, end, tuning)
    frame = evidence_rows(store, start, end, tuning, users, training)
    write_atomic(frame, _shard_file(shard_folder(store, start, end, shards), "evidence", shard))
    return frame.height


def fit_shard_models(store: EventStore, start: date, end: date, tuning: Tuning, shards: int) -> int:
    """The range's models for the shards: kept ones read, the others fitted on every shard's
    training rows in the order the single-process run sees them (and kept); returns the
    number of models."""
    folder = shard_folder(store, start, end, shards)
    columns = [*KEY, "peer_days", "history_days", *DEVIATION_COLUMNS]
    frames = [_evidence(folder, shard) for shard in range(shards)]
    parts = [f.select(columns) for f in frames if "peer_days" in f.columns]
    usable = model_rows(pl.concat(parts).sort(KEY)) if parts else pl.DataFrame()
    forests = kept_forests(store, usable, start, end, tuning) if usable.height else {}
    write_bytes_atomic(pickle.dumps(forests), folder / "models.pickle")
    return sum(f is not None for f in forests.values())


def detect_shard(
    store: EventStore,
    start: date,
    end: date,
    config: Config,
    tuning: Tuning,
    shard: int,
    shards: int,
) -> dict[str, int]:
    """Rules and model scores for one shard's people."""
    folder = shard_folder(store, start, end, shards)
    frame = _evidence(folder, shard)
    forests = pickle.loads((folder / "models.pickle").read_bytes())
    users = shard_users(store, start, end, tuning, shard, shards)
    assembled = with_events(frame, store, start, end, config, tuning, users)
    findings = run_rules(assembled, tuning)
    scores = run_model(assembled, tuning, forests)
    write_atomic(findings, _shard_file(folder, "findings", shard))
    write_atomic(scores, _shard_file(folder, "model", shard))
    return {"findings": findings.height, "scored": scores.height}


def combine_shards(
    store: EventStore, start: date, end: date, tuning: Tuning, shards: int
) -> pl.DataFrame:
    """Gather the shards' findings and model scores into the range's results, score and rank
    them over everyone, and remove the shards' working files."""
    folder = shard_folder(store, start, end, shards)

    def gather(kind: str, schema) -> pl.DataFrame:
        parts = [pl.read_parquet(io_path(_shard_file(folder, kind, s))) for s in range(shards)]
        return pl.concat([pl.DataFrame(schema=schema), *parts], how="vertical_relaxed")

    findings = gather("findings", empty_findings().schema).sort(
        "local_date", "user", "detector", "reason", maintain_order=True
    )
    scores = gather("model", MODEL_SCHEMA).sort(KEY)
    people = [*KEY, "name", "department", "supervisor"]
    days = pl.concat(
        [pl.DataFrame(schema={**DAY_SCHEMA, **dict.fromkeys(people[2:], pl.String)})]
        + [
            f.filter(pl.col("local_date").is_between(start, end)).select(people)
            for s in range(shards)
            if "name" in (f := _evidence(folder, s)).columns
        ]
    )
    _write_days(store, "findings", findings, start, end, "local_date")
    _write_days(store, "model", scores, start, end, "local_date")
    roster = pl.read_parquet(io_path(store.roster_path()))
    alerts = score(findings, scores, days, roster, tuning.scoring, days_between(start, end))
    _write_days(store, "alerts", alerts, start, end, "alert_date")
    remove_tree(folder)
    return alerts
