"""The analysts' API: what the notebooks call to see the effect of a change before making it.

A ``Period`` is a stretch of days loaded once from the store. On it an analyst can run one
detector or the whole pipeline with overrides, sweep one setting over values, backtest, and
explain one person's day. Nothing here publishes alerts or touches the alert store; the only
write is ``write_tuning``, which puts an accepted change into ``detectors/tuning.toml``.

Overrides use the shape of ``tuning.toml`` or dotted keys::

    {"rules": {"mass_printing": {"min_pages": 300}}}
    {"rules.mass_printing.min_pages": 300, "scoring.budget_share": 0.02}

Work is cached on the period: the evidence per baseline setting, each detector's findings per
parameter set, and the model's scores per model setting. A sweep of one rule parameter runs
that rule once per value and reuses everything else.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from detectors.base import TUNING_PATH, TuningError
from detectors.settings import Tuning, load_tuning, merge_tables
from insiderwatch.config import Config, config_for_logs
from insiderwatch.detect import (
    Assembled,
    assemble,
    days_between,
    empty_findings,
    history_days,
    run_model,
)
from insiderwatch.evaluate import Scores, evaluate, read_labels
from insiderwatch.pipeline import features_stage
from insiderwatch.scoring import score
from insiderwatch.store import EventStore, io_path
from schemas.features import MODEL_FEATURES, MOVED_BYTES

REPO = Path(__file__).resolve().parent.parent
# The model settings a fitted forest depends on; the others (cut-off, points, drivers) only
# change how its scores are read.
FIT_SETTINGS = {
    "n_estimators",
    "max_samples",
    "seed",
    "train_days",
    "retrain_every_days",
    "min_train_rows",
}


def nested(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Dotted keys (``rules.mass_printing.min_pages``) as the nested shape of tuning.toml.

    >>> nested({"rules.mass_printing.min_pages": 300, "scoring": {"budget_share": 0.02}})
    {'rules': {'mass_printing': {'min_pages': 300}}, 'scoring': {'budget_share': 0.02}}
    """
    out: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        parts = key.split(".")
        target = out
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        if isinstance(value, Mapping):
            target[parts[-1]] = merge_tables(target.get(parts[-1], {}), nested(value))
        else:
            target[parts[-1]] = value
    return out


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


@dataclass
class Result:
    """One run of the pipeline on a period, nothing published."""

    findings: pl.DataFrame
    model: pl.DataFrame
    alerts: pl.DataFrame  # every user-day over the threshold; ``budgeted`` says who is sent
    tuning: Tuning

    @property
    def sent(self) -> pl.DataFrame:
        """The alerts within the daily budget: what reaches people."""
        return self.alerts.filter(pl.col("budgeted"))

    def per_day(self, days: Iterable[date]) -> pl.DataFrame:
        """Alerts sent per day, days without any included."""
        counts = self.sent.group_by("alert_date").len()
        return (
            pl.DataFrame({"alert_date": list(days)}, schema={"alert_date": pl.Date})
            .join(counts, on="alert_date", how="left")
            .select("alert_date", alerts=pl.col("len").fill_null(0).cast(pl.Int64))
        )

    def per_supervisor(self) -> pl.DataFrame:
        """Alerts sent per supervisor over the period, most first."""
        return (
            self.sent.group_by(pl.col("supervisor").fill_null("(none)"))
            .agg(alerts=pl.len(), people=pl.col("user").n_unique().cast(pl.Int64))
            .sort(["alerts", "supervisor"], descending=[True, False])
        )


@dataclass
class Period:
    """Days ``start``–``end`` of a store, with the caches that make sweeps cheap."""

    store: EventStore
    config: Config
    start: date
    end: date
    tuning_path: Path | None = TUNING_PATH
    labels: pl.DataFrame | None = None
    _assembled: dict[str, Assembled] = field(default_factory=dict, repr=False)
    _findings: dict[tuple[str, str, str], pl.DataFrame] = field(default_factory=dict, repr=False)
    _model: dict[str, pl.DataFrame] = field(default_factory=dict, repr=False)
    _forests: dict[str, dict] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        labelled = "" if self.labels is None else f", labels: {self.labels.height} user-days"
        return f"Period({self.start} – {self.end}, store {self.store.root}{labelled})"

    @property
    def days(self) -> list[date]:
        return days_between(self.start, self.end)

    @property
    def roster(self) -> pl.DataFrame:
        return pl.read_parquet(io_path(self.store.roster_path()))

    def tuning(self, overrides: Mapping[str, Any] | None = None) -> Tuning:
        """The analysts' file with ``overrides`` on top; a typo fails naming the key. Lists
        are not overridden here: they change the stored features, so they go into the
        tuning file and the period is loaded again."""
        changes = nested(overrides)
        if "lists" in changes:
            raise TuningError(
                "lists change the stored features: write them with write_tuning() and "
                "load the period again"
            )
        return load_tuning(self.tuning_path, changes)

    def evidence(self, tuning: Tuning) -> Assembled:
        key = _key(tuning.baseline.model_dump()) + _key(tuning.model.train_days)
        if key not in self._assembled:
            self._assembled[key] = assemble(self.store, self.start, self.end, self.config, tuning)
        return self._assembled[key]

    def findings(self, tuning: Tuning, only: Sequence[str] | None = None) -> pl.DataFrame:
        """Every rule's findings (or ``only`` those), each rule run once per parameter set."""
        assembled = self.evidence(tuning)
        base = _key(tuning.baseline.model_dump())
        parts = []
        for detector in tuning.detectors:
            if only is not None and detector.id not in only:
                continue
            key = (detector.id, _key(detector.params.model_dump()), base)
            if key not in self._findings:
                if assembled.frame.height == 0:
                    self._findings[key] = empty_findings()
                else:
                    self._findings[key] = detector.run(assembled.evidence).collect()
            parts.append(self._findings[key])
        if not parts:
            return empty_findings()
        return pl.concat(parts).sort("local_date", "user", "detector", "reason")

    def model(self, tuning: Tuning) -> pl.DataFrame:
        base = _key(tuning.baseline.model_dump())
        key = base + _key(tuning.model.model_dump())
        if key not in self._model:
            fitting = tuning.model.model_dump(include=FIT_SETTINGS)
            forests = self._forests.setdefault(base + _key(fitting), {})
            self._model[key] = run_model(self.evidence(tuning), tuning, forests)
        return self._model[key]


def load_period(
    start: date | str,
    end: date | str,
    store: Path | str | None = None,
    logs: Path | str | None = None,
    labels: Path | str | None = None,
    tuning_path: Path | None = TUNING_PATH,
) -> Period:
    """Days ``start``–``end`` of the store (default ``./store``), with the site config of the
    landing folder ``logs`` (default the sample logs). When the store lacks the events of the
    period or the baseline days before it, they are ingested from ``logs`` first; features
    are built where missing. ``labels`` (a labels CSV) enables recall and precision."""
    from insiderwatch.ingest import ingest
    from insiderwatch.quality import QualityGate

    start, end = date.fromisoformat(str(start)), date.fromisoformat(str(end))
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    logs = Path(logs) if logs is not None else REPO / "sample_logs"
    event_store = EventStore(store if store is not None else "store")
    config = config_for_logs(logs)
    tuning = load_tuning(tuning_path)
    first = start - timedelta(days=history_days(tuning))
    have = {
        p.parent.name[5:] for p in (event_store.root / "events").glob("*/date=*/part-0.parquet")
    }
    if not event_store.roster_path().exists() or end.isoformat() not in have:
        report = ingest(logs, event_store, config, end, first, end, QualityGate())
        if report.errors:
            raise ValueError(f"ingest of {logs} failed: {report.errors[0]}")
    features_stage(event_store, start, end, config, tuning)
    return Period(
        event_store,
        config,
        start,
        end,
        tuning_path,
        read_labels(Path(labels)) if labels is not None else None,
    )


def run_detector(
    period: Period, detector_id: str, overrides: Mapping[str, Any] | None = None, **params: Any
) -> pl.DataFrame:
    """One rule's findings on the period, with its parameters overridden by ``params``
    (``run_detector(p, "mass_printing", min_pages=300)``)."""
    changes = merge_tables(nested(overrides), {"rules": {detector_id: params}} if params else {})
    tuning = period.tuning(changes)
    if detector_id not in {d.id for d in tuning.detectors}:
        raise TuningError(f"unknown detector: rules.{detector_id}")
    return period.findings(tuning, only=[detector_id])


def run_pipeline(period: Period, overrides: Mapping[str, Any] | None = None) -> Result:
    """Rules, model and scoring on the period with ``overrides``; nothing is published."""
    tuning = period.tuning(overrides)
    findings = period.findings(tuning)
    model = period.model(tuning)
    assembled = period.evidence(tuning)
    alerts = score(
        findings,
        model,
        assembled.evidence.days.collect(),
        period.roster,
        tuning.scoring,
        period.days,
    )
    return Result(findings, model, alerts, tuning)


@dataclass
class Backtest:
    result: Result
    per_day: pl.DataFrame
    per_supervisor: pl.DataFrame
    scores: list[Scores]  # empty without labels; overall first, then per scenario

    def summary(self) -> dict[str, Any]:
        counts = self.per_day["alerts"]
        out: dict[str, Any] = {
            "alerts": int(counts.sum()),
            "alerts_per_day": round(float(counts.mean() or 0.0), 2),
            "max_per_day": int(counts.max() or 0),
            "supervisors": self.per_supervisor.height,
            "alerts_per_supervisor": round(float(self.per_supervisor["alerts"].mean() or 0.0), 2),
            "max_per_supervisor": int(self.per_supervisor["alerts"].max() or 0),
        }
        if self.scores:
            overall = self.scores[0]
            out |= {
                "insider_recall": round(overall.insider_recall, 3),
                "user_day_recall": round(overall.user_day_recall, 3),
                "precision": round(overall.precision, 3),
            }
        return out


def backtest(period: Period, overrides: Mapping[str, Any] | None = None) -> Backtest:
    """The pipeline on the period, as the daily runs would have sent it, with the alert
    volume per day and per supervisor, and recall and precision where labels are loaded."""
    result = run_pipeline(period, overrides)
    scores: list[Scores] = []
    if period.labels is not None:
        sent = result.sent.rename({"user": "user_id"})
        scores = evaluate(sent, period.labels, period.start, period.end)
    return Backtest(result, result.per_day(period.days), result.per_supervisor(), scores)


def sweep(
    period: Period, key: str, values: Sequence[Any], overrides: Mapping[str, Any] | None = None
) -> pl.DataFrame:
    """Backtest once per value of the dotted setting ``key`` (on top of ``overrides``): one row
    per value with the alert volume, the busiest day and supervisor, and, where labels are
    loaded, recall and precision. ``alerts_over_threshold`` counts every user-day that scored
    above the threshold, before the daily budget."""
    rows = []
    for value in values:
        run = backtest(period, merge_tables(nested(overrides), nested({key: value})))
        rows.append(
            {
                "value": value,
                **run.summary(),
                "alerts_over_threshold": run.result.alerts.height,
                "findings": run.result.findings.filter(pl.col("kind") == "detection").height,
            }
        )
    return pl.DataFrame(rows)


@dataclass
class Explanation:
    """Why a person's day scored as it did."""

    user: str
    day: date
    features: pl.DataFrame  # feature, today, usual, peers, own_z, peer_z (busiest first)
    findings: pl.DataFrame
    model: dict[str, Any]
    alert: dict[str, Any] | None
    baseline: str  # "own" or "peers" (a newcomer)


def explain(
    period: Period, user: str, day: date | str, overrides: Mapping[str, Any] | None = None
) -> Explanation:
    """A person's day: each feature against their usual and their peers (with the deviations
    the model sees), the rules' findings, the model's score and drivers, and the alert."""
    day = date.fromisoformat(str(day))
    if not period.start <= day <= period.end:
        raise ValueError(f"{day} is outside the period {period.start} – {period.end}")
    result = run_pipeline(period, overrides)
    frame = period.evidence(result.tuning).frame.filter(
        (pl.col("user") == user) & (pl.col("local_date") == day)
    )
    if frame.height == 0:
        raise ValueError(f"no activity stored for {user} on {day}")
    row = frame.row(0, named=True)
    features = pl.DataFrame(
        [
            {
                "feature": name,
                "today": row.get(name),
                "usual": row.get(f"{name}__own"),
                "peers": row.get(f"{name}__peer"),
                "own_z": row.get(f"{name}__own_z"),
                "peer_z": row.get(f"{name}__peer_z"),
            }
            for name in MODEL_FEATURES
        ],
        schema={
            "feature": pl.String,
            "today": pl.Float64,
            "usual": pl.Float64,
            "peers": pl.Float64,
            "own_z": pl.Float64,
            "peer_z": pl.Float64,
        },
    ).sort(pl.max_horizontal("own_z", "peer_z"), descending=True, nulls_last=True)
    found = result.findings.filter((pl.col("user") == user) & (pl.col("local_date") == day))
    model = result.model.filter((pl.col("user") == user) & (pl.col("local_date") == day))
    alerts = result.alerts.filter((pl.col("user") == user) & (pl.col("alert_date") == day))
    return Explanation(
        user=user,
        day=day,
        features=features,
        findings=found.select("detector", "severity", "channel", "value", "reason", "evidence"),
        model=model.row(0, named=True) if model.height else {},
        alert=alerts.row(0, named=True) if alerts.height else None,
        baseline=row.get("baseline") or "own",
    )


def timeline(period: Period, user: str, overrides: Mapping[str, Any] | None = None) -> pl.DataFrame:
    """One person's days in the period: activity, data moved, findings, model score and the
    alert score, a row per day (days without activity included)."""
    result = run_pipeline(period, overrides)
    frame = period.evidence(result.tuning).frame.filter(
        (pl.col("user") == user) & pl.col("local_date").is_between(period.start, period.end)
    )
    moved = [c for c in MOVED_BYTES if c in frame.columns]
    per_day = frame.select(
        "local_date", "events", bytes_moved=pl.sum_horizontal([pl.col(c) for c in moved])
    )
    found = (
        result.findings.filter(pl.col("user") == user)
        .group_by("local_date")
        .agg(detectors=pl.col("detector").sort())
    )
    model = result.model.filter(pl.col("user") == user).select("local_date", "model_score")
    alerts = result.alerts.filter(pl.col("user") == user).select(
        pl.col("alert_date").alias("local_date"), "score", "budgeted"
    )
    return (
        pl.DataFrame({"local_date": period.days}, schema={"local_date": pl.Date})
        .join(per_day, on="local_date", how="left")
        .join(found, on="local_date", how="left")
        .join(model, on="local_date", how="left")
        .join(alerts, on="local_date", how="left")
        .with_columns(
            pl.col("events", "bytes_moved").fill_null(0),
            pl.col("detectors").fill_null([]),
            pl.col("budgeted").fill_null(False),
        )
        .sort("local_date")
    )


# --- writing an accepted change ---------------------------------------------------------------


def _updated_text(overrides: Mapping[str, Any], path: Path) -> str:
    """The analysts' file with ``overrides`` written in, its comments and order kept."""
    import tomlkit

    text = path.read_text(encoding="utf-8") if path.exists() else ""
    document = tomlkit.parse(text)

    def put(table, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            if not isinstance(value, Mapping):
                table[key] = value
                continue
            if key not in table:
                only_tables = all(isinstance(v, Mapping) for v in value.values())
                table.add(key, tomlkit.table(is_super_table=only_tables))
            put(table[key], value)

    put(document, nested(overrides))
    return tomlkit.dumps(document)


def tuning_diff(overrides: Mapping[str, Any], path: Path = TUNING_PATH) -> str:
    """What ``write_tuning`` would change in the analysts' file, as a unified diff. The new
    file is checked first: a typo or a wrong type fails here, naming the key."""
    text = _updated_text(overrides, path)
    _check(text, path)
    before = path.read_text(encoding="utf-8").splitlines(keepends=True) if path.exists() else []
    return "".join(
        difflib.unified_diff(
            before, text.splitlines(keepends=True), str(path), f"{path} (proposed)"
        )
    )


def write_tuning(overrides: Mapping[str, Any], path: Path = TUNING_PATH) -> Path:
    """Put an accepted change into the analysts' file, keeping its comments."""
    text = _updated_text(overrides, path)
    _check(text, path)
    path.write_text(text, encoding="utf-8")
    return path


def _check(text: str, path: Path) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        candidate = Path(folder) / path.name
        candidate.write_text(text, encoding="utf-8")
        load_tuning(candidate)
