"""Requests to leak and whistle-blowing platforms, paste sites and anonymous upload services."""

from __future__ import annotations

import polars as pl

from detectors import base
from detectors.expressions import count, first_references, human_bytes, usual_and_peers


class Params(base.Params):
    min_requests: int
    own_multiple: float
    usb_window_minutes: int
    visit_severity: base.Severity
    context_severity: base.Severity


def detect(evidence: base.Evidence, p: Params) -> pl.LazyFrame:
    web = evidence.source("web")
    if web is None:
        return base.empty()
    leaks = web.filter(pl.col("leak_site"))
    found = (
        leaks.group_by("user", "local_date")
        .agg(
            first_references(),
            n=pl.len(),
            uploads=(pl.col("action") == "upload").sum(),
            sent=pl.col("bytes_out").filter(pl.col("action") == "upload").fill_null(0).sum(),
            late=pl.col("after_hours").any(),
            sites=pl.col("domain").unique().sort().str.join(", "),
        )
        .join(evidence.days, on=["user", "local_date"], how="inner")
    )
    device = evidence.source("device")
    if device is None:
        found = found.with_columns(after_usb=pl.lit(None, pl.Int64))
    else:
        # The shortest time from a device connect to a later request of the same day.
        connects = device.filter(pl.col("activity") == "connect").select(
            "user", "local_date", connected=pl.col("timestamp")
        )
        gaps = (
            leaks.select("user", "local_date", "timestamp")
            .join(connects, on=["user", "local_date"], how="inner")
            .filter(pl.col("connected") <= pl.col("timestamp"))
            .group_by("user", "local_date")
            .agg(after_usb=(pl.col("timestamp") - pl.col("connected")).dt.total_minutes().min())
        )
        found = found.join(gaps, on=["user", "local_date"], how="left")
    near_usb = pl.col("after_usb").is_not_null() & (pl.col("after_usb") <= p.usb_window_minutes)
    usual = pl.col("leak_site_requests__own").fill_null(0)
    flagged = found.filter(
        (pl.col("uploads") > 0)
        | ((pl.col("n") >= p.min_requests) & (pl.col("n") > p.own_multiple * usual))
    )
    hours = pl.when(pl.col("late")).then(pl.lit("after hours")).otherwise(pl.lit("in hours"))
    circumstances = (
        pl.when(near_usb)
        .then(pl.format("{}, {} min after a removable device was connected", hours, "after_usb"))
        .otherwise(hours)
    )
    return flagged.select(
        "user",
        "local_date",
        "evidence",
        # An upload keeps the rule's severity; a visit is weaker unless it came after hours or
        # right after a removable device was connected.
        severity=pl.when(pl.col("uploads") > 0)
        .then(pl.lit(None, pl.String))
        .when(pl.col("late") | near_usb)
        .then(pl.lit(p.context_severity))
        .otherwise(pl.lit(p.visit_severity)),
        value=pl.col("n").cast(pl.Float64),
        reason=pl.format(
            "{} request(s) to leak, paste or anonymous-upload sites ({}), {} upload(s) of {} "
            "({}); {}",
            count(pl.col("n")),
            pl.col("sites"),
            count(pl.col("uploads")),
            human_bytes(pl.col("sent")),
            circumstances,
            usual_and_peers("leak_site_requests"),
        ),
    )
