from __future__ import annotations

from pathlib import Path

import duckdb
from typer.testing import CliRunner

from insiderwatch.cli import app
from tests.conftest import LOGON_HEADER, csv_text, logon_rows

runner = CliRunner()


def test_ingest_prints_a_summary_and_records_the_run(landing, tmp_path: Path) -> None:
    logs = landing(
        {
            "logon/2024-04-01.csv": csv_text(
                LOGON_HEADER, [*logon_rows(40), "2024-04-01 18:00:00,nobody,PC,logon,false"]
            )
        }
    )
    store = tmp_path / "store"
    result = runner.invoke(
        app, ["ingest", "--logs", str(logs), "--store", str(store), "--as-of", "2024-04-30"]
    )
    assert result.exit_code == 0, result.output
    assert "ingest summary" in result.output
    with duckdb.connect(str(store / "alerts.duckdb"), read_only=True) as con:
        (status,) = con.execute("SELECT status FROM runs").fetchone()
        counts = con.execute(
            "SELECT source, rows_read, stored, quarantined, duplicates "
            "FROM ingest_counts WHERE source = 'logon'"
        ).fetchall()
    assert status == "ok"
    assert counts == [("logon", 41, 40, 1, 0)]


def test_validate_reports_without_writing(landing, tmp_path: Path, monkeypatch) -> None:
    logs = landing({"logon/2024-04-01.csv": csv_text(LOGON_HEADER, logon_rows(10))})
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["validate", "--logs", str(logs), "--as-of", "2024-04-30"])
    assert result.exit_code == 0, result.output
    assert "would store" in result.output
    assert not (tmp_path / "store").exists()


def test_a_broken_file_fails_the_run_naming_file_and_line(landing, tmp_path: Path) -> None:
    logs = landing(
        {
            "logon/2024-04-01.csv": "timestamp,host\n2024-04-01 09:00,PC\n",
            "logon/2024-04-02.csv": csv_text(LOGON_HEADER, logon_rows(5, "2024-04-02")),
        }
    )
    store = tmp_path / "store"
    result = runner.invoke(
        app, ["ingest", "--logs", str(logs), "--store", str(store), "--as-of", "2024-04-30"]
    )
    assert result.exit_code == 1
    assert "logon/2024-04-01.csv:1: missing required column(s): user" in result.output
    # The good day is still stored; the broken one is not.
    assert (store / "events/logon/date=2024-04-02/part-0.parquet").exists()
    assert not (store / "events/logon/date=2024-04-01").exists()
    with duckdb.connect(str(store / "alerts.duckdb"), read_only=True) as con:
        assert con.execute("SELECT status FROM runs").fetchone() == ("failed",)


def test_window_limits_dated_files(landing, tmp_path: Path) -> None:
    logs = landing(
        {
            f"logon/2024-04-0{d}.csv": csv_text(LOGON_HEADER, logon_rows(5, f"2024-04-0{d}"))
            for d in (1, 2, 3)
        }
    )
    store = tmp_path / "store"
    result = runner.invoke(
        app,
        [
            "ingest",
            "--logs",
            str(logs),
            "--store",
            str(store),
            "--start",
            "2024-04-02",
            "--end",
            "2024-04-02",
            "--as-of",
            "2024-04-30",
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (store / "events/logon").iterdir()) == ["date=2024-04-02"]


def test_missing_roster_is_a_clear_error(tmp_path: Path) -> None:
    logs = tmp_path / "empty"
    (logs / "logon").mkdir(parents=True)
    result = runner.invoke(app, ["validate", "--logs", str(logs)])
    assert result.exit_code == 1
    assert "hr/employees.csv: the HR roster is missing" in result.output
