"""Outbound mail naming technical keywords or project code names."""

from __future__ import annotations

import polars as pl

from detectors import base
from detectors.expressions import count, first_references


class Params(base.Params):
    code_name_severity: base.Severity
    personal_keyword_severity: base.Severity
    business_keyword_severity: base.Severity


def detect(evidence: base.Evidence, p: Params) -> pl.LazyFrame:
    mail = evidence.external_mail()
    if mail is None:
        return base.empty()
    hits = mail.filter(
        (pl.col("keywords").list.len() > 0) | (pl.col("code_names").list.len() > 0),
    )
    severity = (
        pl.when((pl.col("code_names").list.len() > 0).any())
        .then(pl.lit(p.code_name_severity))
        .when((pl.col("to_personal") | pl.col("to_competitor")).any())
        .then(pl.lit(p.personal_keyword_severity))
        .otherwise(pl.lit(p.business_keyword_severity))
    )
    grouped = hits.group_by("user", "local_date").agg(
        first_references(),
        severity=severity,
        n=pl.len(),
        terms=pl.concat_list("code_names", "keywords")
        .list.explode(keep_nulls=False, empty_as_null=False)
        .unique()
        .sort()
        .str.join(", "),
        domains=pl.col("external_domains")
        .list.explode(keep_nulls=False, empty_as_null=False)
        .unique()
        .sort()
        .str.join(", "),
    )
    return grouped.join(evidence.days, on=["user", "local_date"], how="left").select(
        "user",
        "local_date",
        "evidence",
        "severity",
        value=pl.col("n").cast(pl.Float64),
        reason=pl.format(
            "{} outbound mail(s) to {} name {}; usual {}; peers {}",
            count(pl.col("n")),
            pl.col("domains"),
            pl.col("terms"),
            count(pl.col("technical_mails__own")),
            count(pl.col("technical_mails__peer")),
        ),
    )
