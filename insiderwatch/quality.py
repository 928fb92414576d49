"""The batch-level quality gate: Great Expectations suites run as a checkpoint per source-day.

Row-level checks (ingest) quarantine individual bad rows. The suites catch what a row check
cannot: a source-day where a large share of rows is bad (a vendor changed a format, a column
shifted), which is held back whole rather than stored half-clean. The suites are committed JSON
files under ``schemas/gx/expectations``, generated from the canonical schema by
:func:`build_suites` (``insiderwatch schemas write-suites``); a test keeps them in step.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from schemas.canonical import SOURCES, Source

SUITE_DIR = Path(__file__).resolve().parent.parent / "schemas" / "gx" / "expectations"
# Share of a source-day's rows that must pass each expectation before the day is stored.
MOSTLY = 0.95


def suite_definition(source: Source) -> dict[str, Any]:
    """The expectation suite for one source, as committed JSON."""
    expectations: list[dict[str, Any]] = []
    for column in source.columns:
        if column.required:
            expectations.append(
                {"type": "expect_column_to_exist", "kwargs": {"column": column.name}}
            )
        if not column.nullable:
            expectations.append(
                {
                    "type": "expect_column_values_to_not_be_null",
                    "kwargs": {"column": column.name, "mostly": MOSTLY},
                }
            )
        if column.allowed:
            expectations.append(
                {
                    "type": "expect_column_values_to_be_in_set",
                    "kwargs": {
                        "column": column.name,
                        "value_set": list(column.allowed),
                        "mostly": MOSTLY,
                    },
                }
            )
        if column.minimum is not None:
            expectations.append(
                {
                    "type": "expect_column_values_to_be_between",
                    "kwargs": {
                        "column": column.name,
                        "min_value": column.minimum,
                        **({"max_value": column.maximum} if column.maximum is not None else {}),
                        "mostly": MOSTLY,
                    },
                }
            )
    return {
        "name": source.name,
        "expectations": expectations,
        "meta": {
            "generated_from": "schemas/canonical.py",
            "notes": f"Batch gate for {source.description}",
        },
    }


def build_suites() -> dict[str, str]:
    """Suite file name -> JSON text, for every source."""
    return {
        f"{name}.json": json.dumps(suite_definition(src), indent=2, ensure_ascii=False) + "\n"
        for name, src in SOURCES.items()
    }


def write_suites(directory: Path = SUITE_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in build_suites().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def gx_columns(source: Source) -> list[str]:
    return [
        c.name
        for c in source.columns
        if not c.nullable or c.allowed or c.minimum is not None or c.required
    ]


def handoff_frame(source: Source, frame: pl.DataFrame) -> Any:
    """The pandas frame GX checks: only the columns an expectation reads, each in the smallest
    form that keeps what its expectations (see :func:`suite_definition`) look at.

    A column with a value set becomes categorical (GX hashes each distinct value once, not
    every row); one with a minimum stays a number; one whose only expectations are that it
    exists and is not null becomes a presence flag (1 or null). A list in pandas would also
    make GX pickle the whole frame to name the batch: 24 s for a day of mail at 10,000 people.
    """
    by_name = {c.name: c for c in source.columns}
    exprs = []
    for name in gx_columns(source):
        if name not in frame.columns:
            continue
        column = by_name[name]
        value = pl.col(name)
        if column.allowed:
            exprs.append(value.cast(pl.String).cast(pl.Categorical))
        elif column.minimum is not None:
            exprs.append(value)
        else:
            exprs.append(pl.when(value.is_not_null()).then(pl.lit(1, pl.Int8)).alias(name))
    return frame.select(exprs).to_pandas()


@dataclass
class GateResult:
    source: str
    success: bool
    evaluated: int
    failures: list[str]

    @property
    def summary(self) -> str:
        if self.success:
            return f"passed ({self.evaluated} expectations)"
        return "failed: " + "; ".join(self.failures)


class QualityGate:
    """One ephemeral GX context, loaded from the committed suites: per source a batch definition
    over a whole dataframe and a checkpoint that runs the suite on it.

    A source-day is first validated against its suite for pass/fail alone, which skips the
    checkpoint's bookkeeping (freshness checks of its stored definitions, a stored result): about
    0.05 s a day instead of 0.08, and ingest runs one validation per source-day. A day that fails
    goes through the checkpoint, which reports each expectation, so the quarantine reason names
    what failed and on what share of rows.
    """

    def __init__(self, suite_dir: Path = SUITE_DIR) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx
        from great_expectations.execution_engine import pandas_execution_engine

        logging.getLogger("great_expectations").setLevel(logging.ERROR)
        # GX marks every pandas batch under 1 GB with a fingerprint, an md5 over
        # pd.util.hash_pandas_object of every row: half of a validation (0.45 of 0.9 s on a day
        # of file access at 10,000 people). An ephemeral context never reads the mark, so no
        # batch is small enough to get one.
        pandas_execution_engine.HASH_THRESHOLD = 0
        self._gx = gx
        self._context = gx.get_context(mode="ephemeral")
        self._context.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(
            globally=False
        )
        datasource = self._context.data_sources.add_pandas("insiderwatch")
        self._lock = threading.Lock()
        self._suites: dict[str, Any] = {}
        self._batches: dict[str, Any] = {}
        self._checkpoints: dict[str, Any] = {}
        for name in SOURCES:
            definition = json.loads((suite_dir / f"{name}.json").read_text(encoding="utf-8"))
            suite = self._context.suites.add(gx.ExpectationSuite(**definition))
            asset = datasource.add_dataframe_asset(name)
            batch = asset.add_batch_definition_whole_dataframe(f"{name}_day")
            validation = self._context.validation_definitions.add(
                gx.ValidationDefinition(name=f"{name}_day", data=batch, suite=suite)
            )
            self._checkpoints[name] = self._context.checkpoints.add(
                gx.Checkpoint(
                    name=f"{name}_gate",
                    validation_definitions=[validation],
                    result_format="SUMMARY",
                )
            )
            self._suites[name] = suite
            self._batches[name] = batch

    def validate(self, source: str, frame: pl.DataFrame) -> GateResult:
        handoff = handoff_frame(SOURCES[source], frame)
        with self._lock:  # one GX context, not made for concurrent runs
            return self._validate(source, handoff)

    def _validate(self, source: str, handoff: Any) -> GateResult:
        batch = self._batches[source].get_batch(batch_parameters={"dataframe": handoff})
        verdict = batch.validate(self._suites[source], result_format="BOOLEAN_ONLY")
        evaluated = len(verdict.results)
        if verdict.success:
            return GateResult(source, True, evaluated, [])
        result = self._checkpoints[source].run(batch_parameters={"dataframe": handoff})
        failures: list[str] = []
        for run in result.run_results.values():
            for item in run.results:
                if item.success:
                    continue
                config = item.expectation_config
                column = config.kwargs.get("column", "")
                share = (item.result or {}).get("unexpected_percent")
                detail = f" ({share:.1f}% of rows)" if share is not None else ""
                failures.append(f"{config.type} on {column}{detail}")
        return GateResult(source, False, evaluated, failures)
