"""The Great Expectations suites: committed, in step with the schema, passing on the sample logs
and failing on a broken copy of them."""

from __future__ import annotations

import gzip
import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from insiderwatch.config import config_for_logs
from insiderwatch.ingest import discover, load_roster, process_source
from insiderwatch.quality import SUITE_DIR, build_suites
from schemas.canonical import EVENT_SOURCES, SOURCES
from tests.conftest import SAMPLE_LOGS

AS_OF = date(2026, 1, 1)


def test_committed_suites_match_the_canonical_schema() -> None:
    expected = build_suites()
    committed = {p.name: p.read_text(encoding="utf-8") for p in SUITE_DIR.glob("*.json")}
    assert committed == expected, "run `insiderwatch schemas write-suites` and commit the result"


def test_schema_docs_are_generated_from_the_schema() -> None:
    from schemas.docs import DOC_PATH, schema_markdown

    assert DOC_PATH.read_text(encoding="utf-8") == schema_markdown(), (
        "run `insiderwatch schemas write-docs` and commit the result"
    )


def _gate_days(logs: Path, source: str, gate, files=None):
    config = config_for_logs(logs)
    roster = load_roster(logs, config)
    chosen = files if files is not None else sorted(discover(logs)[source].glob("*.csv.gz"))
    return process_source(SOURCES[source], chosen, logs, roster, config, AS_OF, gate).counts


@pytest.mark.parametrize("source", EVENT_SOURCES)
def test_each_suite_passes_on_every_sample_day(source: str, ingested_sample: Path) -> None:
    """The session's ingest of the whole sample ran every source-day through the gate and
    recorded its verdict; read them back rather than gating all 540 source-days again."""
    from insiderwatch.db import Database, default_url

    database = Database(default_url(ingested_sample))
    rows = database.query(
        "SELECT day, gate, rows_read, stored FROM ingest_counts WHERE source = ? ORDER BY day",
        [source],
    )
    database.close()
    counts = pl.DataFrame(
        rows, schema=["day", "gate", "rows_read", "stored"], orient="row", infer_schema_length=None
    )
    days = sorted((SAMPLE_LOGS / source).glob("*.csv.gz"))
    assert counts.height == len(days) > 0, f"not every sample day of {source} was gated"
    failed = counts.filter(~pl.col("gate").str.starts_with("passed"))
    assert failed.rows() == []
    assert counts["stored"].sum() > 0.99 * counts["rows_read"].sum()


BREAKAGE = {
    # source: (column, broken value) — a vendor change that shifts or renames values
    "logon": ("activity", "LOGIN_SUCCESS"),
    "file_access": ("action", "FileAccessed"),
    "print": ("pages", "-1"),
    "mail": ("direction", "sent"),
    "web": ("action", "GET"),
    "device": ("activity", "plugged"),
}


@pytest.mark.parametrize("source", EVENT_SOURCES)
def test_each_suite_fails_on_a_broken_copy(source: str, gate, tmp_path) -> None:
    logs = tmp_path / "broken"
    (logs / "hr").mkdir(parents=True)
    shutil.copy(SAMPLE_LOGS / "hr" / "employees.csv", logs / "hr" / "employees.csv")
    original = sorted((SAMPLE_LOGS / source).glob("*.csv.gz"))[5]
    frame = pl.read_csv(gzip.decompress(original.read_bytes()), infer_schema=False)
    column, value = BREAKAGE[source]
    # Break one row in five: far past what the suites tolerate.
    broken = frame.with_columns(
        pl.when(pl.int_range(pl.len()) % 5 == 0)
        .then(pl.lit(value))
        .otherwise(pl.col(column))
        .alias(column)
    )
    (logs / source).mkdir()
    target = logs / source / original.name.removesuffix(".gz")
    broken.write_csv(target)
    counts = _gate_days(logs, source, gate, [target])
    assert len(counts) == 1
    assert counts[0].gate.startswith("failed: ")
    assert column in counts[0].gate
    assert counts[0].stored == 0 and counts[0].quarantined == frame.height
