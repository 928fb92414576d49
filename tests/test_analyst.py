"""The analysts' API: sweeps, backtests, explanations and writing an accepted change, on the
sample organisation."""

from __future__ import annotations

import shutil
import tomllib
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from detectors.base import TUNING_PATH, TuningError
from insiderwatch import analyst
from insiderwatch.alerts import list_alerts
from insiderwatch.cli import app
from insiderwatch.db import Database, default_url
from tests.conftest import REPORT_END, REPORT_START, SAMPLE_LOGS

LABELS = SAMPLE_LOGS / "labels.csv"


@pytest.fixture(scope="module")
def store(reported_store: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("analyst") / "store"
    shutil.copytree(reported_store, root)
    return root


@pytest.fixture(scope="module")
def period(store: Path) -> analyst.Period:
    return analyst.load_period(REPORT_START, REPORT_END, store=store, labels=LABELS)


def test_a_backtest_reproduces_what_the_daily_runs_published(period, store: Path) -> None:
    published = list_alerts(Database(default_url(store)), REPORT_START, REPORT_END)
    result = analyst.backtest(period).result
    mine = result.sent.sort("alert_date", "rank")
    theirs = published.sort("alert_date", "rank")
    assert mine["alert_id"].to_list() == theirs["alert_id"].to_list()
    assert mine["score"].to_list() == theirs["score"].to_list()
    assert mine["reasons"].to_list() == theirs["reasons"].to_list()


def test_threshold_sweep_gives_monotone_alert_counts(period) -> None:
    values = [20, 30, 40, 50, 60, 70, 80, 90]
    swept = analyst.sweep(period, "scoring.alert_threshold", values)
    assert swept["value"].to_list() == values
    for column in ("alerts_over_threshold", "alerts", "max_per_day"):
        counts = swept[column].to_list()
        assert counts == sorted(counts, reverse=True), (column, counts)
    assert swept["alerts_over_threshold"][0] > swept["alerts_over_threshold"][-1]
    # Recall can only fall as the threshold rises; the shipped value matches a plain backtest.
    recall = swept["user_day_recall"].to_list()
    assert recall == sorted(recall, reverse=True)
    shipped = swept.filter(pl.col("value") == 50).row(0, named=True)
    summary = analyst.backtest(period).summary()
    assert {k: shipped[k] for k in summary} == summary


def test_a_rule_parameter_sweep_reruns_only_that_rule(period) -> None:
    swept = analyst.sweep(period, "rules.mass_printing.min_pages", [30, 60, 120, 240, 100_000])
    findings = swept["findings"].to_list()
    assert findings == sorted(findings, reverse=True) and findings[0] > findings[-1]
    lowered = analyst.run_detector(period, "mass_printing", min_pages=30)
    shipped = analyst.run_detector(period, "mass_printing")
    assert lowered.height > shipped.height
    assert shipped.join(lowered, on=["user", "local_date"], how="anti").height == 0
    with pytest.raises(TuningError, match=r"rules\.no_such_rule"):
        analyst.run_detector(period, "no_such_rule")


def test_model_cutoff_sweep_matches_fresh_runs(period, store: Path) -> None:
    swept = analyst.sweep(period, "model.quantile", [0.95, 0.995])
    fresh = analyst.load_period(REPORT_START, REPORT_END, store=store, labels=LABELS)
    again = analyst.backtest(fresh, {"model.quantile": 0.95}).summary()
    assert {k: swept.row(0, named=True)[k] for k in again} == again
    assert swept["alerts_over_threshold"][0] >= swept["alerts_over_threshold"][1]


def test_explain_shows_features_baselines_findings_and_model(period) -> None:
    top = analyst.run_pipeline(period).sent.sort("score", descending=True).row(0, named=True)
    why = analyst.explain(period, top["user"], top["alert_date"])
    assert why.alert is not None and why.alert["score"] == top["score"]
    assert set(why.findings["detector"]) >= {d for d in top["detectors"] if d != "isolation_forest"}
    strongest = why.features.row(0, named=True)
    assert strongest["today"] > (strongest["usual"] or 0)
    assert why.model["model_score"] is not None and why.baseline in ("own", "peers")
    days = analyst.timeline(period, top["user"])
    assert days.height == len(period.days)
    assert days.filter(pl.col("local_date") == top["alert_date"])["score"].item() == top["score"]
    with pytest.raises(ValueError, match="outside the period"):
        analyst.explain(period, top["user"], date(2024, 1, 1))


def test_a_change_written_to_tuning_changes_the_next_runs_alerts(
    store: Path, tmp_path: Path
) -> None:
    tuning = tmp_path / "tuning.toml"
    shutil.copy(TUNING_PATH, tuning)
    change = {
        "scoring.alert_threshold": 75,
        "rules.removable_media_copy.min_files": 100_000,
        "rules.removable_media_copy.min_bytes": 10**15,
    }
    diff = analyst.tuning_diff(change, tuning)
    assert "+alert_threshold = 75" in diff and "+[rules.removable_media_copy]" in diff
    analyst.write_tuning(change, tuning)
    text = tuning.read_text(encoding="utf-8")
    assert text.startswith(TUNING_PATH.read_text(encoding="utf-8").splitlines()[0])  # comments kept
    assert tomllib.loads(text)["scoring"]["alert_threshold"] == 75

    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    window = ["--start", "2024-06-17", "--end", "2024-06-21"]
    common = ["run", "--logs", str(SAMPLE_LOGS), "--store", str(copy), *window]
    done = CliRunner().invoke(app, [*common, "--tuning", str(tuning)])
    assert done.exit_code == 0, done.output
    db = Database(default_url(copy))
    after = list_alerts(db, date(2024, 6, 17), date(2024, 6, 21), include_over_budget=True)
    found = db.query(
        "SELECT DISTINCT detector FROM findings WHERE alert_date BETWEEN ? AND ?",
        (date(2024, 6, 17), date(2024, 6, 21)),
    )
    detectors = {d for (d,) in found}
    db.close()
    before = list_alerts(
        Database(default_url(store)), date(2024, 6, 17), date(2024, 6, 21), include_over_budget=True
    )
    assert before.filter(pl.col("score") < 75).height > 0
    assert after.height < before.height and after["score"].min() >= 75
    assert "removable_media_copy" not in detectors


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"rules.mass_printing.min_pagez": 300}, "rules.mass_printing.min_pagez"),
        ({"scoring.alert_treshold": 60}, "scoring.alert_treshold"),
        ({"rules.mass_printing.min_pages": "many"}, "min_pages"),
        ({"rulez.mass_printing.min_pages": 300}, "rulez"),
    ],
)
def test_a_typo_fails_naming_the_key_and_writes_nothing(
    change: dict, named: str, tmp_path: Path
) -> None:
    tuning = tmp_path / "tuning.toml"
    shutil.copy(TUNING_PATH, tuning)
    original = tuning.read_text(encoding="utf-8")
    with pytest.raises(TuningError, match=named.replace(".", r"\.")):
        analyst.write_tuning(change, tuning)
    assert tuning.read_text(encoding="utf-8") == original
    tuning.write_text(analyst._updated_text(change, tuning), encoding="utf-8")
    done = CliRunner().invoke(
        app, ["detectors", "list", "--tuning", str(tuning)], terminal_width=200
    )
    assert done.exit_code == 2 and named.split(".")[-1] in done.output


def test_nested_keys_and_dotted_keys_are_the_same_change() -> None:
    assert analyst.nested({"rules.mass_printing.min_pages": 1}) == analyst.nested(
        {"rules": {"mass_printing": {"min_pages": 1}}}
    )


def test_lists_in_tuning_replace_the_sites_and_rebuild_the_features(
    store: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    tuning = tmp_path / "tuning.toml"
    shutil.copy(TUNING_PATH, tuning)
    days = (date(2024, 6, 17), date(2024, 6, 21))
    shipped = analyst.load_period(*days, store=copy, tuning_path=tuning)
    named = analyst.run_detector(shipped, "technical_content_outbound")
    assert named.height > 0
    with pytest.raises(TuningError, match="lists change the stored features"):
        analyst.run_pipeline(shipped, {"lists.code_names": []})

    analyst.write_tuning({"lists": {"code_names": [], "technical_keywords": []}}, tuning)
    silenced = analyst.load_period(*days, store=copy, tuning_path=tuning)
    assert analyst.run_detector(silenced, "technical_content_outbound").height == 0
    # The features were rebuilt with the analysts' lists: no technical mails are counted.
    frame = silenced.evidence(silenced.tuning()).frame
    assert frame.filter(pl.col("local_date").is_between(*days))["technical_mails"].sum() == 0


@pytest.mark.parametrize(
    ("lists", "named"),
    [
        ('[lists]\ncode_namez = ["X"]\n', "lists.code_namez"),
        ("[lists]\ntechnical_keywords = 3\n", "lists.technical_keywords"),
    ],
)
def test_a_bad_list_in_tuning_fails_naming_it(lists: str, named: str, tmp_path: Path) -> None:
    from detectors.settings import load_tuning

    tuning = tmp_path / "tuning.toml"
    tuning.write_text(lists, encoding="utf-8")
    with pytest.raises(TuningError, match=named.replace(".", r"\.")):
        load_tuning(tuning)
