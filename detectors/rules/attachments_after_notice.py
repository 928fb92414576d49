"""External mail with attachments after the person gave notice."""

from __future__ import annotations

import polars as pl

from detectors import base
from detectors.expressions import count, day_references, human_bytes, on_notice, usual_and_peers


class Params(base.Params):
    repeat_severity: base.Severity
    min_mails: int


def detect(evidence: base.Evidence, p: Params) -> pl.LazyFrame:
    mail = evidence.external_mail()
    if mail is None:
        return base.empty()
    sent = mail.filter(pl.col("has_attachments"))
    noticed = evidence.days.filter(on_notice())
    per_day = day_references(sent, noticed).join(
        sent.group_by("user", "local_date").agg(
            n=pl.len(),
            size=pl.col("attachment_bytes").fill_null(0).sum(),
            domains=pl.col("external_domains")
            .list.explode(keep_nulls=False, empty_as_null=False)
            .unique()
            .sort()
            .str.join(", "),
        ),
        on=["user", "local_date"],
    )
    return (
        per_day.filter(pl.col("n") >= p.min_mails)
        .join(noticed, on=["user", "local_date"], how="inner")
        .select(
            "user",
            "local_date",
            "evidence",
            severity=pl.when(pl.col("external_attachments__after_notice_days") > 0)
            .then(pl.lit(p.repeat_severity))
            .otherwise(pl.lit(None, dtype=pl.String)),
            value=pl.col("n").cast(pl.Float64),
            reason=pl.format(
                "{} external mail(s) with attachments ({}) to {} after giving notice on {}"
                " ({} earlier day(s) since); {}",
                count(pl.col("n")),
                human_bytes(pl.col("size")),
                pl.col("domains"),
                pl.col("notice_date"),
                pl.col("external_attachments__after_notice_days"),
                usual_and_peers("external_attachments"),
            ),
        )
    )
