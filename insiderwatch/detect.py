"""Detection: assemble the evidence for a range of days, run every rule, run the model.

Rules and the model see the same evidence; the rules' findings and the model's scores are
kept apart until scoring combines them.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta
from importlib.metadata import version

import numpy as np
import polars as pl

from detectors.base import Evidence, is_external_mail
from detectors.expressions import count, human_bytes, percent
from detectors.models.isolation_forest import DeviationForest, deviation_matrix
from detectors.settings import Tuning
from insiderwatch.config import Config
from insiderwatch.features import (
    BASELINE_INPUTS,
    BASELINES,
    KEY,
    ensure_baselines,
    evidence_frame,
    kept_baselines,
    kept_external_mail,
    load_day_events,
    roster_lazy,
)
from insiderwatch.store import EventStore, write_bytes_atomic
from schemas.features import FEATURE_NAMES, UNITS

ROSTER_COLUMNS = (
    "user",
    "name",
    "email",
    "department",
    "role",
    "supervisor",
    "hire_date",
    "notice_date",
    "last_day",
    "last_day_source",
    "priority",
    "personal_emails",
)


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


# Features whose repeats after notice are counted, so a notice-period check raises its alarm
# once and then reports the repeats without flooding the review budget.
NOTICE_FEATURES = ("remote_logons", "external_attachments")


def with_notice_history(
    frame: pl.LazyFrame, window: int, earlier: pl.LazyFrame | None = None
) -> pl.LazyFrame:
    """``f__after_notice_days``: earlier days in the window, on or after the person's notice,
    on which ``f`` was non-zero. The window reaches back into ``earlier`` (rows of the days
    before ``frame``'s, ``with_roster`` applied, with ``KEY`` and the notice features) when
    ``frame`` does not hold those days itself."""
    rows = frame.select(*KEY, "notice_date", *NOTICE_FEATURES)
    if earlier is not None:
        rows = pl.concat([earlier.select(rows.collect_schema().names()), rows]).sort(KEY)
    counted = (
        rows.filter(pl.col("notice_date").is_not_null())
        .select(*KEY, *NOTICE_FEATURES)
        .rolling(index_column="local_date", period=f"{window}d", closed="left", group_by="user")
        .agg([(pl.col(f) > 0).sum().alias(f"{f}__after_notice_days") for f in NOTICE_FEATURES])
    )
    return frame.join(counted, on=list(KEY), how="left", maintain_order="left").with_columns(
        [pl.col(f"{f}__after_notice_days").fill_null(0) for f in NOTICE_FEATURES]
    )


def training_days(tuning: Tuning) -> int:
    """Days before a range whose user-days the model may train on (see ``run_model``)."""
    return tuning.model.train_days + tuning.model.retrain_every_days


def history_days(tuning: Tuning) -> int:
    """Days of features a range needs before its first day: training days, their baselines'
    window, and the window before that which tells whether an item is new."""
    return training_days(tuning) + 2 * tuning.baseline.window_days


@dataclass
class Assembled:
    frame: pl.DataFrame  # every loaded user-day (training days first), with baselines
    evidence: Evidence  # the scored days only, and their annotated events
    start: date
    end: date


def with_roster(frame: pl.LazyFrame, roster: pl.LazyFrame) -> pl.LazyFrame:
    """Roster columns as known on each day: a notice (and its last day) only from the day it
    was given; a notice dated after the scored day was unknown then and is not used."""
    known = pl.col("notice_date") <= pl.col("local_date")
    last_known = known | (pl.col("last_day") <= pl.col("local_date"))
    people = roster.select(ROSTER_COLUMNS)
    return frame.join(people, on="user", how="left", maintain_order="left").with_columns(
        notice_date=pl.when(known).then(pl.col("notice_date")),
        last_day=pl.when(last_known).then(pl.col("last_day")),
        last_day_source=pl.when(last_known).then(pl.col("last_day_source")),
        priority=pl.col("priority").fill_null(False),
        personal_emails=pl.col("personal_emails").fill_null([]),
    )


def assemble(
    store: EventStore,
    start: date,
    end: date,
    config: Config,
    tuning: Tuning,
    users: Collection[str] | None = None,
    training: bool = True,
) -> Assembled:
    """Evidence for ``start``–``end``: every person's, or only ``users``'s (one shard); with
    the model's training days unless ``training`` is False (see ``evidence_rows``)."""
    rows = evidence_rows(store, start, end, tuning, users, training)
    return with_events(rows, store, start, end, config, tuning, users)


def evidence_rows(
    store: EventStore,
    start: date,
    end: date,
    tuning: Tuning,
    users: Collection[str] | None = None,
    training: bool = True,
) -> pl.DataFrame:
    """The user-days detection works on (training days first), with baselines and the roster
    as known on each day, in ``KEY`` order.

    Without ``training``, only the scored days: enough when the range's models are kept
    (``forests_kept``), and a daily run then reads one day of baselines instead of 36. The
    notice history still looks back over the window, read as its few columns only."""
    b = tuning.baseline
    settings = (b.window_days, b.min_history_days, b.min_peer_size)
    first = start - timedelta(days=training_days(tuning) if training else 0)
    frame = evidence_frame(store, first, end, *settings, 0, users)
    if frame.is_empty():
        return pl.DataFrame(schema={"user": pl.String, "local_date": pl.Date})
    roster = roster_lazy(store)
    earlier = None
    if not training:  # the notice history's window, a few columns of it
        days = days_between(start - timedelta(days=b.window_days), start - timedelta(days=1))
        ensure_baselines(store, days, *settings)
        narrow = kept_baselines(store, days, [*KEY, *NOTICE_FEATURES], users)
        earlier = None if narrow is None else with_roster(narrow, roster)
    # evidence_frame is in KEY order, and both joins keep the left side's order: the model's
    # training sample depends on it.
    return with_notice_history(with_roster(frame.lazy(), roster), b.window_days, earlier).collect()


def with_events(
    frame: pl.DataFrame,
    store: EventStore,
    start: date,
    end: date,
    config: Config,
    tuning: Tuning,
    users: Collection[str] | None = None,
) -> Assembled:
    """``frame`` (from ``evidence_rows``) with the annotated events of the scored days."""
    config = tuning.site(config)
    roster = roster_lazy(store)
    scored = frame.lazy().filter(pl.col("local_date").is_between(start, end))
    events: dict[str, list[pl.LazyFrame]] = {}
    external: list[pl.LazyFrame] = []
    kept = kept_external_mail(store, start, end, config)
    for day in days_between(start, end):
        for source, lf in load_day_events(store, day, config, roster).items():
            if users is not None:
                lf = lf.filter(pl.col("user").is_in(list(users)))
            events.setdefault(source, []).append(lf)
            if source == "mail":
                mail = kept.get(day)
                if mail is None:
                    mail = lf.filter(is_external_mail())  # already only ``users``
                elif users is not None:
                    mail = mail.filter(pl.col("user").is_in(list(users)))
                external.append(mail)
    merged = {source: pl.concat(parts) for source, parts in events.items()}
    outbound = pl.concat(external, how="diagonal_relaxed") if external else None
    return Assembled(frame, Evidence(scored, merged, outbound), start, end)


def run_rules(assembled: Assembled, tuning: Tuning) -> pl.DataFrame:
    """Every rule's findings for the scored days, collected once."""
    if assembled.frame.height == 0:
        return empty_findings()
    parts = [d.run(assembled.evidence) for d in tuning.detectors]
    # Each rule is planned on its own: shared, the annotated events were worked out once in
    # full, every column of every row, where alone a rule keeps only the rows and columns it
    # reads (a day at 10,000 people: 0.45-0.6 s shared, 0.2 s alone; the sample's 31 days of
    # 108,000 events, many small files: 0.5 s shared, 0.6 s alone).
    alone = pl.QueryOptFlags(comm_subplan_elim=False)
    return (
        pl.concat(parts)
        .collect(optimizations=alone)
        .sort("local_date", "user", "detector", "reason")
    )


def empty_findings() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "detector": pl.String,
            "user": pl.String,
            "local_date": pl.Date,
            "severity": pl.String,
            "kind": pl.String,
            "booster": pl.String,
            "channel": pl.String,
            "value": pl.Float64,
            "reason": pl.String,
            "evidence": pl.List(pl.String),
            "top_secret": pl.Boolean,
        }
    )


MODEL_SCHEMA = {
    "user": pl.String,
    "local_date": pl.Date,
    "model_score": pl.Float64,
    "model_percentile": pl.Float64,
    "model_points": pl.Float64,
    "drivers": pl.List(pl.String),
    "model_reason": pl.String,
}


def run_model(
    assembled: Assembled,
    tuning: Tuning,
    forests: dict[date, DeviationForest | None] | None = None,
) -> pl.DataFrame:
    """Isolation-forest scores per scored user-day, with the features that drove high scores.

    A day's model is fitted on the ``train_days`` before the day it was last retrained on
    (at most ``retrain_every_days - 1`` days earlier); the scored day is never in it.
    ``forests`` keeps the fitted models by retraining day across calls with the same
    evidence and fitting settings (a notebook sweeping the cut-off refits nothing)."""
    m = tuning.model
    frame = assembled.frame
    if frame.height == 0:
        return pl.DataFrame(schema=MODEL_SCHEMA)
    usable = model_rows(frame)
    forests = fit_forests(usable, assembled.start, assembled.end, tuning, forests)
    out = []
    for day in days_between(assembled.start, assembled.end):
        today = usable.filter(pl.col("local_date") == day)
        forest = forests[retrain_anchor(day, tuning)]
        if today.height == 0 or forest is None:
            continue
        x = deviation_matrix(today)
        scores = forest.decision_function(x)
        pct = forest.percentile(scores)
        points = np.clip((pct - m.quantile) / (1 - m.quantile), 0, 1) * m.max_points
        drivers = forest.drivers(x, m.drivers, only=points > 0)
        out.append(
            today.select(KEY).with_columns(
                model_score=pl.Series(scores),
                model_percentile=pl.Series(pct),
                model_points=pl.Series(points),
                drivers=pl.Series(drivers, dtype=pl.List(pl.String)),
            )
        )
    if not out:
        return pl.DataFrame(schema=MODEL_SCHEMA)
    scored = pl.concat(out)
    return scored.join(_driver_reasons(scored, frame), on=list(KEY), how="left").select(
        list(MODEL_SCHEMA)
    )


def model_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows with a baseline to deviate from: only these can train or be scored."""
    return frame.filter(pl.col("peer_days").is_not_null() | (pl.col("history_days") > 0))


def retrain_anchor(day: date, tuning: Tuning) -> date:
    """The day a day's model was last retrained on. Retraining follows a calendar grid, so a
    day's model is the same whether the day is run alone or inside a backfill."""
    every = tuning.model.retrain_every_days
    return day - timedelta(days=day.toordinal() % every)


def fit_forests(
    usable: pl.DataFrame,
    start: date,
    end: date,
    tuning: Tuning,
    forests: dict[date, DeviationForest | None] | None = None,
) -> dict[date, DeviationForest | None]:
    """The model of every scored day, by retraining day: fitted on the ``train_days`` of
    ``usable`` rows (in ``KEY`` order) before it; None when too few rows. Models already in
    ``forests`` are kept."""
    m = tuning.model
    forests = {} if forests is None else forests
    for day in days_between(start, end):
        anchor = retrain_anchor(day, tuning)
        if anchor in forests:
            continue
        train = usable.filter(
            pl.col("local_date").is_between(
                anchor - timedelta(days=m.train_days), anchor, closed="left"
            )
        )
        forests[anchor] = (
            DeviationForest(m.n_estimators, m.max_samples, m.seed).fit(deviation_matrix(train))
            if train.height >= m.min_train_rows
            else None
        )
    return forests


FORESTS = "forest"  # models/forest/date=<retraining day>/: the fitted model and its inputs
FOREST_FILE = "forest.pickle"
FOREST_INPUTS = "forest.sha256"
# Bump when fitting changes, so kept models are fitted again.
_FOREST_VERSION = "2"  # 2: the scikit-learn forest kept, not the pyod wrapper


def _forest_stamps(store: EventStore, anchors: list[date], tuning: Tuning) -> dict[date, str]:
    """What the model of each retraining day is fitted from: the kept baselines' stamps of its
    ``train_days`` (they fix the training rows and their order), the model settings and the
    versions of the libraries whose objects are pickled."""
    m = tuning.model
    back = range(1, m.train_days + 1)
    days = sorted({a - timedelta(days=k) for a in anchors for k in back})
    kept = {
        date.fromisoformat(p.parent.name[5:]): p.read_text()
        for p in store.existing("features", BASELINES, days, BASELINE_INPUTS)
    }
    settings = ":".join(
        [_FOREST_VERSION, version("scikit-learn"), version("pyod")]
        + [str(v) for v in (m.n_estimators, m.max_samples, m.seed, m.train_days, m.min_train_rows)]
    )
    return {
        a: hashlib.sha256(
            "\n".join([settings, *(kept.get(a - timedelta(days=k), "-") for k in back)]).encode()
        ).hexdigest()
        for a in anchors
    }


def _fresh_anchors(store: EventStore, start: date, end: date, tuning: Tuning) -> dict[date, bool]:
    """The range's retraining days, and whether each one's kept model is still the one its
    training baselines (as kept now) would give."""
    anchors = sorted({retrain_anchor(d, tuning) for d in days_between(start, end)})
    stamps = _forest_stamps(store, anchors, tuning)
    out = {}
    for anchor in anchors:
        stamp = store.partition("models", FORESTS, anchor, FOREST_INPUTS)
        out[anchor] = stamp.exists() and stamp.read_text() == stamps[anchor]
    return out


def forests_kept(store: EventStore, start: date, end: date, tuning: Tuning) -> bool:
    """Whether every model the range needs is kept and fresh, so nothing is fitted and the
    training rows need not be read (``evidence_rows(..., training=False)``). The training
    days' baselines are brought up to date first: a re-ingested training day changes them,
    and so the model."""
    b = tuning.baseline
    span = days_between(start - timedelta(days=training_days(tuning)), end)
    ensure_baselines(store, span, b.window_days, b.min_history_days, b.min_peer_size)
    return all(_fresh_anchors(store, start, end, tuning).values())


def kept_forests(
    store: EventStore, usable: pl.DataFrame, start: date, end: date, tuning: Tuning
) -> dict[date, DeviationForest | None]:
    """``fit_forests`` with the fitted models kept in the store by retraining day: a model is
    fitted once, on its retraining day's run, and read by the runs of the days after it, until
    the baselines it was fitted on change. ``usable`` must hold everyone's training rows
    (``model_rows`` of the evidence) unless every model is kept (``forests_kept``)."""
    anchors = _fresh_anchors(store, start, end, tuning)
    forests: dict[date, DeviationForest | None] = {}
    for anchor in (a for a, fresh in anchors.items() if fresh):
        model = store.partition("models", FORESTS, anchor, FOREST_FILE).read_bytes()
        forests[anchor] = pickle.loads(model)  # the store's own file, as trusted as the store
    stale = [a for a in anchors if a not in forests]
    fit_forests(usable, start, end, tuning, forests)
    stamps = _forest_stamps(store, stale, tuning) if stale else {}
    for anchor in stale:
        # The old stamp off, the model (whole or not at all), the new stamp last: a run stopped
        # anywhere in between leaves no stamp, so the next run fits the model again.
        stamp = store.partition("models", FORESTS, anchor, FOREST_INPUTS)
        if stamp.exists():
            stamp.unlink()
        write_bytes_atomic(
            pickle.dumps(forests[anchor]), store.partition("models", FORESTS, anchor, FOREST_FILE)
        )
        stamp.write_text(stamps[anchor])
    return forests


def _fmt(name: str):
    return {"bytes": human_bytes, "share": percent}.get(UNITS[name], count)


def _driver_reasons(scored: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
    """ "unusual day for this person (model): removable bytes 320 MB (usual 0 B; peers 1.2 MB)"."""
    driven = scored.filter(pl.col("drivers").list.len() > 0).select(*KEY, "drivers")
    rows = frame.join(driven.select(KEY), on=list(KEY), how="semi")
    long = driven.explode("drivers").rename({"drivers": "feature"})
    texts = pl.concat(
        [
            rows.select(
                *KEY,
                feature=pl.lit(name),
                text=pl.format(
                    "{} {} (usual {}; peers {})",
                    pl.lit(name.replace("_", " ")),
                    _fmt(name)(pl.col(name)),
                    _fmt(name)(pl.col(f"{name}__own")),
                    _fmt(name)(pl.col(f"{name}__peer")),
                ),
            )
            for name in FEATURE_NAMES
        ]
    )
    return (
        long.with_row_index("order")
        .join(texts, on=[*KEY, "feature"], how="left")
        .sort("order")
        .group_by(KEY, maintain_order=True)
        .agg(text=pl.col("text").str.join("; "))
        .select(*KEY, model_reason=pl.format("unusual day for this person (model): {}", "text"))
    )
