"""Uploads to personal cloud storage or file-transfer sites."""

from __future__ import annotations

import polars as pl

from detectors import base
from detectors.expressions import (
    count,
    first_references,
    human_bytes,
    usual_and_peers,
    with_references,
)


class Params(base.Params):
    min_bytes: int
    endpoint_min_files: int
    endpoint_own_multiple: float


def detect(evidence: base.Evidence, p: Params) -> pl.LazyFrame:
    found = []
    web = evidence.source("web")
    if web is not None:
        uploads = (
            web.filter(pl.col("action") == "upload", pl.col("personal_site"))
            .group_by("user", "local_date")
            .agg(
                first_references(),
                sites=pl.col("domain").unique().sort().str.join(", "),
                sent=pl.col("bytes_out").fill_null(0).sum(),
                n=pl.len(),
            )
            .filter(pl.col("sent") >= p.min_bytes)
        )
        found.append(
            uploads.join(evidence.days, on=["user", "local_date"], how="inner").select(
                "user",
                "local_date",
                "evidence",
                value=pl.col("sent").cast(pl.Float64),
                reason=pl.format(
                    "uploaded {} in {} request(s) to personal cloud or file transfer ({}); {}",
                    human_bytes(pl.col("sent")),
                    count(pl.col("n")),
                    pl.col("sites"),
                    usual_and_peers("personal_upload_bytes", human_bytes),
                ),
            )
        )
    files = evidence.source("file_access")
    if files is not None:
        cloud = (pl.col("action") == "upload") | (pl.col("destination") == "cloud")
        flagged = evidence.days.filter(
            pl.col("cloud_uploads") >= p.endpoint_min_files,
            pl.col("cloud_uploads")
            > p.endpoint_own_multiple * pl.col("cloud_uploads__own").fill_null(0),
        )
        uploads = files.filter(cloud.fill_null(False))
        found.append(
            with_references(flagged, uploads, with_top_secret=True).select(
                "user",
                "local_date",
                "evidence",
                "top_secret",
                value=pl.col("cloud_upload_bytes"),
                reason=pl.format(
                    "uploaded {} files ({}) to cloud storage from the endpoint; {}",
                    count(pl.col("cloud_uploads")),
                    human_bytes(pl.col("cloud_upload_bytes")),
                    usual_and_peers("cloud_uploads"),
                ),
            )
        )
    if not found:
        return base.empty()
    return pl.concat(found, how="diagonal_relaxed")
