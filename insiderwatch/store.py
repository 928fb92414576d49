"""The event store: Parquet partitioned by source and local date, plus quarantine and roster.

Layout under the store root::

    events/<source>/date=YYYY-MM-DD/part-0.parquet
    quarantine/<source>/date=YYYY-MM-DD/part-0.parquet
    hr/employees.parquet

Each partition is one file written beside its final name and moved into place with
``os.replace``, so a reader sees the old partition or the new one, never half of either.
"""

from __future__ import annotations

import os
import uuid
from datetime import date
from pathlib import Path

import polars as pl

PART = "part-0.parquet"

QUARANTINE_SCHEMA = {
    "source": pl.String,
    "source_file": pl.String,
    "source_line": pl.Int64,
    "local_date": pl.Date,
    "reason": pl.String,
    "raw": pl.String,
}


class EventStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def partition(self, area: str, source: str, day: date | None) -> Path:
        label = day.isoformat() if day is not None else "unknown"
        return self.root / area / source / f"date={label}" / PART

    def roster_path(self) -> Path:
        return self.root / "hr" / "employees.parquet"

    def write_partition(
        self, area: str, source: str, day: date | None, frame: pl.DataFrame
    ) -> Path:
        target = self.partition(area, source, day)
        write_atomic(frame, target)
        return target

    def write_roster(self, frame: pl.DataFrame) -> None:
        write_atomic(frame, self.roster_path())

    def scan(
        self, source: str, start: date | None = None, end: date | None = None, area: str = "events"
    ) -> pl.LazyFrame:
        """Lazy scan of one source, pruned to the partitions between start and end."""
        base = self.root / area / source
        files = sorted(base.glob(f"date=*/{PART}"))
        chosen = [f for f in files if _in_window(f.parent.name[5:], start, end)]
        if not chosen:
            return pl.LazyFrame()
        return pl.scan_parquet(chosen)


def _in_window(label: str, start: date | None, end: date | None) -> bool:
    if label == "unknown":
        return start is None and end is None
    day = date.fromisoformat(label)
    return (start is None or day >= start) and (end is None or day <= end)


def write_atomic(frame: pl.DataFrame, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        frame.write_parquet(tmp, compression="zstd", statistics=True)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
