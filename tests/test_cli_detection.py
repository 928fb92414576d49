"""The detection commands end to end: run, alerts list / export, triage, evaluate."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from insiderwatch.cli import app
from insiderwatch.samples import generate

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cli")
    logs, store = root / "logs", root / "store"
    generate(50, 45, 6060, logs)
    result = runner.invoke(app, ["run", "--logs", str(logs), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "within the daily review budget" in result.output
    return logs, store


def alert_ids(store: Path) -> list[str]:
    with duckdb.connect(str(store / "alerts.duckdb"), read_only=True) as con:
        return [r[0] for r in con.execute("SELECT alert_id FROM alerts WHERE budgeted").fetchall()]


def test_run_records_ingest_and_detection(ran) -> None:
    _, store = ran
    with duckdb.connect(str(store / "alerts.duckdb"), read_only=True) as con:
        runs = con.execute("SELECT kind, status, summary FROM runs ORDER BY started_at").fetchall()
    assert [(k, s) for k, s, _ in runs] == [("ingest", "ok"), ("detect", "ok")]
    assert '"rules"' in runs[1][2] and '"model"' in runs[1][2]  # stage timings
    assert alert_ids(store)


def test_alerts_list_shows_ids_and_reasons(ran) -> None:
    _, store = ran
    result = runner.invoke(app, ["alerts", "list", "--store", str(store), "--limit", "3"])
    assert result.exit_code == 0, result.output
    shown = [a for a in alert_ids(store) if a in result.output]
    assert len(shown) == min(3, len(alert_ids(store)))
    assert "usual" in result.output


def test_alerts_export_csv_and_parquet(ran, tmp_path: Path) -> None:
    _, store = ran
    for fmt in ("csv", "parquet"):
        out = tmp_path / f"alerts.{fmt}"
        result = runner.invoke(
            app, ["alerts", "export", "--store", str(store), "--format", fmt, "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
        frame = pl.read_csv(out) if fmt == "csv" else pl.read_parquet(out)
        assert sorted(frame["alert_id"].to_list()) == sorted(alert_ids(store))


def test_triage_sets_status_and_rejects_nonsense(ran) -> None:
    _, store = ran
    target = alert_ids(store)[0]
    ok = runner.invoke(
        app, ["triage", target, "--status", "reviewing", "--store", str(store), "--actor", "sec1"]
    )
    assert ok.exit_code == 0, ok.output
    assert f"{target}: new → reviewing" in ok.output
    bad = runner.invoke(app, ["triage", target, "--status", "closed", "--store", str(store)])
    assert bad.exit_code == 1
    assert "unknown status 'closed'" in bad.output
    missing = runner.invoke(app, ["triage", "IW-x", "--status", "confirmed", "--store", str(store)])
    assert missing.exit_code == 1 and "no alert 'IW-x'" in missing.output
    listed = runner.invoke(app, ["alerts", "list", "--store", str(store), "--status", "reviewing"])
    assert target in listed.output


def test_evaluate_prints_every_figure_per_scenario(ran) -> None:
    logs, store = ran
    result = runner.invoke(
        app, ["evaluate", "--labels", str(logs / "labels.csv"), "--store", str(store)]
    )
    assert result.exit_code == 0, result.output
    for heading in ("insider recall", "user-day recall", "precision", "median delay"):
        assert heading in result.output
    scenarios = pl.read_csv(logs / "labels.csv")["scenario"].unique().to_list()
    for scenario in [*scenarios, "all"]:
        assert scenario in result.output


def test_evaluate_rejects_a_bad_labels_file(ran, tmp_path: Path) -> None:
    _, store = ran
    labels = tmp_path / "labels.csv"
    labels.write_text("user,scenario,date\nu00003,x,2024-13-01\n")
    result = runner.invoke(app, ["evaluate", "--labels", str(labels), "--store", str(store)])
    assert result.exit_code == 2
    assert f"{labels}:2: not a date: '2024-13-01'" in result.output


def test_a_tuning_typo_stops_the_run_naming_the_key(ran, tmp_path: Path) -> None:
    logs, store = ran
    tuning = tmp_path / "tuning.toml"
    tuning.write_text("[rules.removable_media_copy]\nmin_flies = 3\n")
    result = runner.invoke(
        app, ["run", "--logs", str(logs), "--store", str(store), "--tuning", str(tuning)]
    )
    assert result.exit_code == 2
    assert "rules.removable_media_copy.min_flies" in result.output
