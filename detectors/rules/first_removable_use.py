"""A removable device used by someone whose history holds none: first-time behaviour."""

from __future__ import annotations

import polars as pl

from detectors import base
from detectors.expressions import count, with_references


class Params(base.Params):
    min_history_days: int
    max_usual_after_hours_share: float
    peer_common_rate: float
    min_files: int
    minor_severity: base.Severity
    after_hours_severity: base.Severity


def detect(evidence: base.Evidence, p: Params) -> pl.LazyFrame:
    parts = []
    device = evidence.source("device")
    if device is not None:
        parts.append(
            device.filter(pl.col("activity") == "connect").select(
                "user", "local_date", "timestamp", "source_file", "source_line", "after_hours"
            )
        )
    files = evidence.source("file_access")
    if files is not None:
        parts.append(
            files.filter(pl.col("destination") == "removable").select(
                "user", "local_date", "timestamp", "source_file", "source_line", "after_hours"
            )
        )
    if not parts:
        return base.empty()
    used = pl.concat(parts, how="vertical_relaxed")
    late = used.group_by("user", "local_date").agg(late=pl.col("after_hours").any())
    # Nothing removable on any day of the window, with enough days in it to say so.
    never = (
        (pl.col("usb_connects__own_max").fill_null(0) == 0)
        & (pl.col("removable_files__own_max").fill_null(0) == 0)
        & (pl.col("baseline") == "own")
        & (pl.col("history_days") >= p.min_history_days)
    )
    today = (pl.col("usb_connects") > 0) | (pl.col("removable_files") > 0)
    flagged = evidence.days.filter(never, today).join(late, on=["user", "local_date"], how="left")
    # After hours is new for someone whose usual day keeps to working hours (a few minutes
    # past the end of the day on some days is not late work).
    first_late = pl.col("late").fill_null(False) & (
        pl.col("after_hours_share__own").fill_null(0) <= p.max_usual_after_hours_share
    )
    when = (
        pl.when(first_late)
        .then(pl.lit("after hours, not the person's habit"))
        .when(pl.col("late").fill_null(False))
        .then(pl.lit("after hours"))
        .otherwise(pl.lit("in hours"))
    )
    return with_references(flagged, used).select(
        "user",
        "local_date",
        "evidence",
        # The strongest is after hours by someone who keeps to working hours (the first step
        # of CERT's scenario 1); copying several files is the rule's severity; a device with
        # a file or two, or a use in a group whose members use removable media routinely (a
        # sparse user's quiet month), is context for other findings.
        severity=pl.when(first_late)
        .then(pl.lit(p.after_hours_severity))
        .when(
            (pl.col("usb_connects__peer").fill_null(0) >= p.peer_common_rate)
            | (pl.col("removable_files") < p.min_files)
        )
        .then(pl.lit(p.minor_severity)),
        value=pl.col("usb_connects") + pl.col("removable_files"),
        reason=pl.format(
            "first removable-media use in {} active days: {} device connect(s), {} file(s) "
            "copied ({}); usual 0; peers {} connect(s) a day",
            count(pl.col("history_days")),
            count(pl.col("usb_connects")),
            count(pl.col("removable_files")),
            when,
            count(pl.col("usb_connects__peer")),
        ),
    )
