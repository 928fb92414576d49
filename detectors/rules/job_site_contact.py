"""Visits to job sites and spot-consulting (expert network) platforms."""

from __future__ import annotations

import polars as pl

from detectors import base
from detectors.expressions import count, first_references


class Params(base.Params):
    min_visits: int
    expert_network_severity: base.Severity


def detect(evidence: base.Evidence, p: Params) -> pl.LazyFrame:
    web = evidence.source("web")
    if web is None:
        return base.empty()
    visits = (
        web.filter(pl.col("job_site") | pl.col("expert_network"))
        .group_by("user", "local_date")
        .agg(
            first_references(),
            n=pl.len(),
            sites=pl.col("domain").unique().sort().str.join(", "),
            expert=pl.col("expert_network").any(),
        )
        .filter(pl.col("n") >= p.min_visits)
    )
    return visits.join(evidence.days, on=["user", "local_date"], how="left").select(
        "user",
        "local_date",
        "evidence",
        severity=pl.when(pl.col("expert")).then(pl.lit(p.expert_network_severity)),
        value=pl.col("n").cast(pl.Float64),
        reason=pl.format(
            "{} visit(s) to job or spot-consulting sites ({}); usual {}; peers {}",
            count(pl.col("n")),
            pl.col("sites"),
            count(pl.col("job_site_visits__own") + pl.col("expert_network_visits__own")),
            count(pl.col("job_site_visits__peer") + pl.col("expert_network_visits__peer")),
        ),
    )
