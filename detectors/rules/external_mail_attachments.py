"""Attachments mailed to private, free-mail or competitor addresses."""

from __future__ import annotations

import polars as pl

from detectors import base
from detectors.expressions import count, first_references, human_bytes, usual_and_peers


class Params(base.Params):
    min_mails: int
    free_mail_severity: base.Severity
    own_address_severity: base.Severity
    competitor_severity: base.Severity


def detect(evidence: base.Evidence, p: Params) -> pl.LazyFrame:
    mail = evidence.external_mail()
    if mail is None:
        return base.empty()
    risky = mail.filter(
        pl.col("has_attachments"),
        pl.col("to_personal") | pl.col("to_competitor"),
    )
    kind = (
        pl.when(pl.col("to_competitor").any())
        .then(pl.lit("a competitor"))
        .when(pl.col("to_own_personal").any())
        .then(pl.lit("their own private address"))
        .otherwise(pl.lit("a free-mail address"))
    )
    severity = (
        pl.when(pl.col("to_competitor").any())
        .then(pl.lit(p.competitor_severity))
        .when(pl.col("to_own_personal").any())
        .then(pl.lit(p.own_address_severity))
        .otherwise(pl.lit(p.free_mail_severity))
    )
    grouped = risky.group_by("user", "local_date").agg(
        first_references(),
        n=pl.len(),
        files=pl.col("attachments").fill_null(0).sum(),
        size=pl.col("attachment_bytes").fill_null(0).sum(),
        domains=pl.col("external_domains")
        .list.explode(keep_nulls=False, empty_as_null=False)
        .unique()
        .sort()
        .str.join(", "),
        kind=kind,
        severity=severity,
    )
    return (
        grouped.filter(pl.col("n") >= p.min_mails)
        .join(evidence.days, on=["user", "local_date"], how="left")
        .select(
            "user",
            "local_date",
            "evidence",
            "severity",
            value=pl.col("n").cast(pl.Float64),
            reason=pl.format(
                "mailed {} attachment(s) ({}) in {} mail(s) to {} ({}); {}",
                count(pl.col("files")),
                human_bytes(pl.col("size")),
                count(pl.col("n")),
                pl.col("kind"),
                pl.col("domains"),
                usual_and_peers("personal_mails"),
            ),
        )
    )
