"""Scoring: rule findings and the model's score become one 0–100 risk per user-day, boosted
(leaver, priority person, 極秘 content, several channels, collect-then-exfiltrate), ranked per
day and capped by the daily review budget."""

from __future__ import annotations

import hashlib
from datetime import date

import polars as pl

from detectors.settings import ScoringSettings
from insiderwatch.detect import KEY, MODEL_SCHEMA
from schemas.features import COLLECTION_CHANNELS, EXFIL_CHANNELS

STATUSES = ("new", "reviewing", "confirmed", "dismissed")

ALERT_SCHEMA: dict[str, pl.DataType] = {
    "alert_id": pl.String(),
    "alert_date": pl.Date(),
    "user": pl.String(),
    "name": pl.String(),
    "department": pl.String(),
    "supervisor": pl.String(),
    "score": pl.Int64(),
    "severity": pl.String(),
    "rank": pl.Int64(),
    "budgeted": pl.Boolean(),
    "detectors": pl.List(pl.String()),
    "reasons": pl.List(pl.String()),
    "evidence": pl.List(pl.String()),
    "model_score": pl.Float64(),
    "drivers": pl.List(pl.String()),
}


def stable_id(prefix: str, *parts: object) -> str:
    """Same inputs, same id, on every run and machine (``IW-20240612-3f9a…``)."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:12]
    return f"{prefix}-{digest}"


def alert_id(user: str, day: date) -> str:
    return stable_id(f"IW-{day:%Y%m%d}", user, day.isoformat())


def finding_id(detector: str, user: str, day: date, reason: str) -> str:
    return stable_id("F", detector, user, day.isoformat(), reason)


def headcount(roster: pl.DataFrame, days: list[date]) -> pl.DataFrame:
    """People employed on each day (hired, and not past their last day)."""
    frame = pl.DataFrame({"alert_date": days}, schema={"alert_date": pl.Date})
    return (
        frame.join(roster.select("hire_date", "last_day"), how="cross")
        .filter(
            pl.col("hire_date") <= pl.col("alert_date"),
            pl.col("last_day").is_null() | (pl.col("last_day") >= pl.col("alert_date")),
        )
        .group_by("alert_date")
        .agg(headcount=pl.len())
    )


def settings_points(settings: ScoringSettings) -> pl.Expr:
    """Risk points of a finding from its severity (info and unknown: 0)."""
    return pl.col("severity").replace_strict(settings.points, default=0.0, return_dtype=pl.Float64)


def score(
    findings: pl.DataFrame,
    model: pl.DataFrame,
    days: pl.DataFrame,
    roster: pl.DataFrame,
    settings: ScoringSettings,
    scored_days: list[date],
) -> pl.DataFrame:
    """Alerts (user-days at or above the alert threshold), ranked per day, with reasons."""
    s = settings
    graded = findings.with_columns(points=settings_points(s))
    # A total order (reason breaks ties), so reasons and evidence list the same way every run.
    detections = graded.filter(pl.col("kind") == "detection").sort(
        "points", "detector", "reason", descending=[True, False, False]
    )
    per_day = detections.group_by(KEY).agg(
        strongest=pl.col("points").max(),
        n_detectors=pl.col("detector").n_unique(),
        detectors=pl.col("detector").unique(maintain_order=True),
        reasons=pl.col("reason"),
        evidence=pl.col("evidence").list.explode(keep_nulls=False, empty_as_null=False),
        channels=pl.col("channel").filter(pl.col("channel").is_in(EXFIL_CHANNELS)).unique().sort(),
        collects=pl.col("channel").is_in(COLLECTION_CHANNELS).any(),
        top_secret=pl.col("top_secret").any(),
    )
    boosters = (
        graded.filter(pl.col("kind") == "booster")
        .group_by(KEY)
        .agg(
            boosters=pl.col("booster").unique().sort(),
            booster_reasons=pl.col("reason").sort(),
        )
    )
    model_cols = model if model.height else pl.DataFrame(schema=MODEL_SCHEMA)
    people = days.select(*KEY, "name", "department", "supervisor").unique(list(KEY))
    frame = (
        per_day.join(model_cols, on=list(KEY), how="full", coalesce=True)
        .join(boosters, on=list(KEY), how="left")
        .join(people, on=list(KEY), how="left")
        .with_columns(
            strongest=pl.col("strongest").fill_null(0.0),
            n_detectors=pl.col("n_detectors").fill_null(0),
            model_points=pl.col("model_points").fill_null(0.0),
            detectors=pl.col("detectors").fill_null([]),
            reasons=pl.col("reasons").fill_null([]),
            evidence=pl.col("evidence").fill_null([]),
            channels=pl.col("channels").fill_null([]),
            collects=pl.col("collects").fill_null(False),
            top_secret=pl.col("top_secret").fill_null(False),
            boosters=pl.col("boosters").fill_null([]),
            booster_reasons=pl.col("booster_reasons").fill_null([]),
            drivers=pl.col("drivers").fill_null([]),
        )
    )
    extra = (pl.col("n_detectors").cast(pl.Int64) - 1).clip(0, s.max_extra_findings) * (
        s.extra_finding_points
    )
    base = pl.col("strongest") + extra + pl.col("model_points")
    multi = pl.col("channels").list.len() >= 2
    collect_exfil = pl.col("collects") & (pl.col("channels").list.len() >= 1)
    b = s.boosters
    boost = (
        pl.col("boosters").list.contains("leaver").cast(pl.Float64) * b.get("leaver", 0)
        + pl.col("boosters").list.contains("priority").cast(pl.Float64) * b.get("priority", 0)
        + pl.col("top_secret").cast(pl.Float64) * b.get("top_secret", 0)
        + multi.cast(pl.Float64) * b.get("multi_channel", 0)
        + collect_exfil.cast(pl.Float64) * b.get("collect_exfiltrate", 0)
    )
    extra_reasons = pl.concat_list(
        pl.when((pl.col("model_points") > 0) & pl.col("model_reason").is_not_null())
        .then(pl.concat_list(pl.col("model_reason")))
        .otherwise(pl.lit([], dtype=pl.List(pl.String))),
        pl.col("booster_reasons"),
        pl.when(pl.col("top_secret"))
        .then(pl.lit(["極秘 material involved"]))
        .otherwise(pl.lit([], dtype=pl.List(pl.String))),
        pl.when(multi)
        .then(
            pl.concat_list(
                pl.format("several channels on one day: {}", pl.col("channels").list.join(", "))
            )
        )
        .otherwise(pl.lit([], dtype=pl.List(pl.String))),
        pl.when(collect_exfil)
        .then(pl.lit(["collection and exfiltration on the same day"]))
        .otherwise(pl.lit([], dtype=pl.List(pl.String))),
    )
    risk = (
        pl.when(base > 0).then((base + boost).clip(0, 100)).otherwise(0.0).round(0).cast(pl.Int64)
    )
    thresholds = sorted(s.severity_thresholds.items(), key=lambda kv: -kv[1])
    severity = pl.when(pl.lit(False)).then(pl.lit(None, dtype=pl.String))
    for name, low in thresholds:
        severity = severity.when(pl.col("score") >= low).then(pl.lit(name))
    scored = frame.with_columns(
        score=risk,
        reasons=pl.concat_list("reasons", extra_reasons),
        detectors=pl.when(pl.col("model_points") > 0)
        .then(pl.concat_list("detectors", pl.lit(["isolation_forest"])))
        .otherwise(pl.col("detectors")),
    ).with_columns(severity=severity.otherwise(pl.lit("none")))
    alerts = scored.filter(pl.col("score") >= s.alert_threshold).rename(
        {"local_date": "alert_date"}
    )
    counts = headcount(roster, scored_days)
    ranked = (
        alerts.sort(
            ["alert_date", "score", "strongest", "model_score", "user"],
            descending=[False, True, True, True, False],
            nulls_last=True,
        )
        .with_columns(rank=pl.int_range(1, pl.len() + 1).over("alert_date"))
        .join(counts, on="alert_date", how="left")
        .with_columns(
            budgeted=pl.col("rank")
            <= pl.max_horizontal(
                pl.lit(s.budget_min),
                (pl.col("headcount").fill_null(0) * s.budget_share).ceil().cast(pl.Int64),
            )
        )
    )
    ids = [alert_id(u, d) for u, d in zip(ranked["user"], ranked["alert_date"], strict=True)]
    return ranked.with_columns(alert_id=pl.Series(ids, dtype=pl.String)).select(
        [pl.col(c).cast(t) for c, t in ALERT_SCHEMA.items()]
    )
