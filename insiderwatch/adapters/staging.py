"""Writing staged canonical rows: one Parquet part per vendor block and local day."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from insiderwatch.readers import (
    LINE,
    ORIGIN_FILE,
    ORIGIN_LINE,
    REJECT,
    REJECT_RAW,
    RawBatch,
)
from schemas.canonical import SOURCES

DAY = "_day"
UNDATED = "undated"


def iso_local(expr: pl.Expr, fmt: str) -> tuple[pl.Expr, pl.Expr]:
    """A vendor timestamp as canonical text (ISO, local, no offset) and its local day.

    A value that does not parse is passed on unchanged, so the ingest quarantines it with
    "unparseable timestamp" and the vendor line.
    """
    parsed = expr.str.strip_chars().str.to_datetime(fmt, strict=False, time_unit="us")
    text = pl.coalesce(parsed.dt.strftime("%Y-%m-%dT%H:%M:%S"), expr)
    return text, parsed.dt.date()


def utc_iso(expr: pl.Expr, formats: tuple[str, ...]) -> tuple[pl.Expr, pl.Expr]:
    """A UTC vendor timestamp as canonical text with ``+00:00``, and the parsed UTC instant
    (null when no format fits; the text is then the value unchanged, for the ingest to
    quarantine)."""
    cleaned = expr.str.strip_chars().str.replace(r"Z$", "").str.replace(r"\.\d+$", "")
    parsed = pl.coalesce(
        [cleaned.str.to_datetime(f, strict=False, time_unit="us") for f in formats]
    ).dt.replace_time_zone("UTC")
    text = pl.coalesce(parsed.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"), expr)
    return text, parsed


class StagingWriter:
    """Writes canonical-text rows of one source into ``<root>/<source>/<day>/``."""

    def __init__(self, root: Path, source: str, stem: str) -> None:
        self.root = root
        self.source = SOURCES[source]
        self.stem = stem
        self.parts = 0
        self.rows = 0

    def write(self, frame: pl.DataFrame, start: date | None, end: date | None) -> int:
        """Write ``frame`` (canonical columns, origin columns, ``_day``); returns the rows
        dated outside [start, end], which are not written."""
        keep = frame
        if start is not None:
            keep = keep.filter((pl.col(DAY) >= start).fill_null(True))
        if end is not None:
            keep = keep.filter((pl.col(DAY) <= end).fill_null(True))
        outside = frame.height - keep.height
        columns = [*self.source.names, ORIGIN_FILE, ORIGIN_LINE, REJECT, REJECT_RAW]
        for (day,), part in keep.partition_by(DAY, as_dict=True, maintain_order=True).items():
            label = day.isoformat() if day is not None else UNDATED
            folder = self.root / self.source.name / label
            folder.mkdir(parents=True, exist_ok=True)
            self.parts += 1
            part.select(columns).write_parquet(
                folder / f"{self.stem}-{self.parts:05d}.parquet", compression="zstd"
            )
            self.rows += part.height
        return outside


def rejects_frame(batch: RawBatch, source: str, origin: str) -> pl.DataFrame:
    """The records of ``batch`` that could not be split, as staged rows with their reason."""
    names = SOURCES[source].names
    return pl.DataFrame(
        {
            **{c: pl.Series([None] * len(batch.rejects), dtype=pl.String) for c in names},
            ORIGIN_FILE: pl.Series([origin] * len(batch.rejects), dtype=pl.String),
            ORIGIN_LINE: pl.Series([r.line for r in batch.rejects], dtype=pl.Int64),
            REJECT: pl.Series([r.reason for r in batch.rejects], dtype=pl.String),
            REJECT_RAW: pl.Series([r.raw for r in batch.rejects], dtype=pl.String),
            DAY: pl.Series([None] * len(batch.rejects), dtype=pl.Date),
        }
    )


def staged_rows(
    mapped: dict[str, pl.Expr],
    day: pl.Expr,
    source: str,
    origin: str,
    reject: pl.Expr | None = None,
    reject_raw: pl.Expr | None = None,
) -> list[pl.Expr]:
    """Select expressions for the staged columns of ``source`` from a vendor frame; with
    ``reject``, the rows travel as records the adapter could not use, with that reason."""
    out = []
    for name in SOURCES[source].names:
        expr = mapped.get(name, pl.lit(None, pl.String))
        out.append(expr.cast(pl.String).alias(name))
    return [
        *out,
        pl.lit(origin).alias(ORIGIN_FILE),
        pl.col(LINE).alias(ORIGIN_LINE),
        (reject if reject is not None else pl.lit(None, pl.String)).alias(REJECT),
        (reject_raw if reject_raw is not None else pl.lit(None, pl.String)).alias(REJECT_RAW),
        day.alias(DAY),
    ]
