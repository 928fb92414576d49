"""Activity after the person's last working day: an account that should be off."""

from __future__ import annotations

import polars as pl

from detectors import base
from detectors.expressions import count, with_references


class Params(base.Params):
    min_events: int


def detect(evidence: base.Evidence, p: Params) -> pl.LazyFrame:
    activity = evidence.activity()
    if activity is None:
        return base.empty()
    # Only a day HR recorded: an inferred one (a disappearance from an LDAP export) is a guess
    # about when someone left, and activity after a guess is no missed de-provisioning.
    gone = (
        pl.col("last_day").is_not_null()
        & (pl.col("local_date") > pl.col("last_day"))
        & (pl.col("last_day_source") != "inferred").fill_null(True)
    )
    flagged = evidence.days.filter(gone, pl.col("events") >= p.min_events)
    return with_references(flagged, activity).select(
        "user",
        "local_date",
        "evidence",
        value=pl.col("events"),
        reason=pl.format(
            "{} events {} day(s) after the last working day {}; usual 0 after leaving; peers 0",
            count(pl.col("events")),
            (pl.col("local_date") - pl.col("last_day")).dt.total_days(),
            pl.col("last_day"),
        ),
    )
