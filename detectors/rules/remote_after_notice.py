"""Remote logons after the person gave notice."""

from __future__ import annotations

import polars as pl

from detectors import base
from detectors.expressions import count, on_notice, usual_and_peers, with_references


class Params(base.Params):
    repeat_severity: base.Severity
    min_logons: int


def detect(evidence: base.Evidence, p: Params) -> pl.LazyFrame:
    logons = evidence.source("logon")
    if logons is None:
        return base.empty()
    flagged = evidence.days.filter(on_notice(), pl.col("remote_logons") >= p.min_logons)
    remote = logons.filter(pl.col("activity") == "logon", pl.col("remote").fill_null(False))
    return with_references(flagged, remote).select(
        "user",
        "local_date",
        "evidence",
        severity=pl.when(pl.col("remote_logons__after_notice_days") > 0)
        .then(pl.lit(p.repeat_severity))
        .otherwise(pl.lit(None, dtype=pl.String)),
        value=pl.col("remote_logons"),
        reason=pl.format(
            "{} remote logon(s) after giving notice on {} ({} earlier day(s) since); {}",
            count(pl.col("remote_logons")),
            pl.col("notice_date"),
            pl.col("remote_logons__after_notice_days"),
            usual_and_peers("remote_logons"),
        ),
    )
