"""Vendor formats -> the canonical landing folder.

An adapter reads a vendor export and writes a *staged* landing folder in the canonical layout:
``hr/employees.csv`` and ``<source>/<YYYY-MM-DD>/<vendor file>-<block>.parquet``, every value
still text, so the ordinary ingest types and checks it exactly as it would a canonical file.
Each staged row carries the vendor file and line it came from (``_origin_file``,
``_origin_line``), so a quarantined row names the file the user has, not the staged copy. A
record the adapter cannot split into fields travels as a row with ``_reject`` (why) and
``_reject_raw`` (its text) and lands in quarantine. Vendor files are read in blocks, so memory
holds one block, never a whole file.

Formats: ``canonical`` (no staging), ``cert`` (the CERT insider-threat test data) and ``m365``
(Microsoft 365 unified audit log and Exchange message trace). :func:`detect_format` tells them
apart by their files.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

from insiderwatch.config import Config
from insiderwatch.readers import FileError
from insiderwatch.store import is_url

Format = Literal["canonical", "cert", "m365"]
FORMATS: tuple[str, ...] = ("auto", "canonical", "cert", "m365")


@dataclass
class Staged:
    """What an adapter wrote and what it saw on the way."""

    format: str
    folder: Path
    vendor_rows: dict[str, int] = field(default_factory=dict)  # vendor file -> records read
    outside_window: int = 0  # records dated outside --start/--end, not staged
    staged: int = 0  # rows written to the staged folder
    skipped: dict[str, int] = field(default_factory=dict)  # records with no canonical meaning
    folded: int = 0  # message-trace rows folded into a message already staged
    warnings: list[str] = field(default_factory=list)

    @property
    def reconciles(self) -> bool:
        """Every vendor record is staged, outside the window, skipped or folded."""
        accounted = self.staged + self.outside_window + sum(self.skipped.values()) + self.folded
        return sum(self.vendor_rows.values()) == accounted

    def summary(self) -> str:
        parts = [f"{sum(self.vendor_rows.values()):,} records in {len(self.vendor_rows)} file(s)"]
        parts.append(f"{self.staged:,} staged as canonical")
        if self.outside_window:
            parts.append(f"{self.outside_window:,} dated outside the window")
        if self.skipped:
            parts.append(f"{sum(self.skipped.values()):,} with no canonical meaning")
        if self.folded:
            parts.append(f"{self.folded:,} trace rows folded into their messages")
        return f"{self.format} format: " + ", ".join(parts)


Progress = Callable[[str], None]


def detect_format(folder: Path) -> Format:
    """The format of a landing folder, from the files in it."""
    from insiderwatch.adapters import cert, m365
    from schemas.canonical import EVENT_SOURCES

    if not folder.is_dir():
        raise FileError(str(folder), None, "the landing folder does not exist")
    found: list[Format] = []
    if any((folder / s).is_dir() for s in EVENT_SOURCES):
        found.append("canonical")
    if cert.looks_like(folder):
        found.append("cert")
    if m365.looks_like(folder):
        found.append("m365")
    if len(found) == 1:
        return found[0]
    if not found:
        if (folder / "hr" / "employees.csv").is_file():
            return "canonical"
        raise FileError(
            str(folder),
            None,
            "cannot tell the format: no canonical source folders, no CERT files "
            "(logon.csv, LDAP/ …) and no Microsoft 365 exports; pass --format",
        )
    raise FileError(
        str(folder),
        None,
        f"the folder looks like more than one format ({', '.join(found)}); pass --format",
    )


def stage(
    logs: Path,
    fmt: str,
    workdir: Path,
    config: Config,
    start: date | None = None,
    end: date | None = None,
    progress: Progress | None = None,
) -> Staged:
    """Stage ``logs`` (format ``fmt`` or ``auto``) under ``workdir``; canonical is not copied."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    chosen = detect_format(logs) if fmt == "auto" else fmt
    if chosen == "canonical":
        return Staged("canonical", logs)
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    if chosen == "cert":
        from insiderwatch.adapters.cert import stage_cert

        return stage_cert(logs, workdir, config, start, end, progress)
    from insiderwatch.adapters.m365 import stage_m365

    return stage_m365(logs, workdir, config, start, end, progress)


@contextmanager
def staged_landing(
    logs: Path,
    fmt: str,
    store: str | Path | None,
    config: Config,
    start: date | None = None,
    end: date | None = None,
    progress: Progress | None = None,
) -> Iterator[Staged]:
    """:func:`stage` into a scratch folder beside the store (a vendor export can be large;
    the system temp folder may be small), removed when the block ends."""
    local = None if store is None or is_url(store) else Path(store)  # objects: a local temp
    if local is not None:
        local.mkdir(parents=True, exist_ok=True)
    # Hidden and named .tmp, so the next run to take the store's lock removes it if this one
    # is killed (insiderwatch.locking).
    with tempfile.TemporaryDirectory(prefix=".staging-", suffix=".tmp", dir=local) as scratch:
        yield stage(logs, fmt, Path(scratch) / "landing", config, start, end, progress)
