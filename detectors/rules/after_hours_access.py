"""Work after hours or on a holiday that is unusual for the person."""

from __future__ import annotations

import polars as pl

from detectors import base
from detectors.expressions import count, percent, with_references


class Params(base.Params):
    min_events: int
    min_share: float
    max_usual_share: float


def detect(evidence: base.Evidence, p: Params) -> pl.LazyFrame:
    activity = evidence.activity()
    if activity is None:
        return base.empty()
    flagged = evidence.days.filter(
        pl.col("after_hours_events") >= p.min_events,
        pl.col("after_hours_share") >= p.min_share,
        pl.col("after_hours_share__own").fill_null(0) <= p.max_usual_share,
    )
    return with_references(flagged, activity.filter(pl.col("after_hours"))).select(
        "user",
        "local_date",
        "evidence",
        value=pl.col("after_hours_events"),
        reason=pl.format(
            "{} events after hours or on a holiday ({} of the day); usual {}; peers {}",
            count(pl.col("after_hours_events")),
            percent(pl.col("after_hours_share")),
            percent(pl.col("after_hours_share__own")),
            percent(pl.col("after_hours_share__peer")),
        ),
    )
