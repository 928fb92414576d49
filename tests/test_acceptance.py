"""Acceptance on an organisation generated with a seed never used while developing the
detectors (27182818): at a 1 % daily budget, insider recall ≥ 0.9, precision ≥ 0.5 and a
median detection delay of at most one day. Only ``evaluate`` reads the labels."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from detectors.settings import load_tuning
from insiderwatch.alerts import list_alerts
from insiderwatch.config import config_for_logs
from insiderwatch.db import Database
from insiderwatch.evaluate import evaluate, read_labels
from insiderwatch.ingest import ingest
from insiderwatch.pipeline import detect_range
from insiderwatch.samples import SCENARIOS, generate
from insiderwatch.store import EventStore

HOLDOUT_SEED = 27182818
REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_holdout_organisation_meets_the_acceptance_figures(tmp_path: Path) -> None:
    logs, store = tmp_path / "logs", tmp_path / "store"
    generate(150, 90, HOLDOUT_SEED, logs)
    config = config_for_logs(logs)
    report = ingest(logs, EventStore(store), config, as_of=date(2024, 6, 29))
    assert not report.errors
    db = Database(str(store / "alerts.duckdb"))
    tuning = load_tuning(None)
    assert tuning.scoring.budget_share == 0.01
    detect_range(EventStore(store), db, date(2024, 4, 1), date(2024, 6, 29), config, tuning, "acc")
    sent = list_alerts(db)
    db.close()

    overall, *scenarios = evaluate(
        sent, read_labels(logs / "labels.csv"), date(2024, 4, 1), date(2024, 6, 29)
    )
    summary = "\n".join(
        f"{s.name}: insiders {s.detected}/{s.insiders}, user-days {s.user_days_hit}/{s.user_days},"
        f" alerts {s.true_alerts}/{s.alerts}, delay {s.median_delay}"
        for s in [overall, *scenarios]
    )
    assert overall.insider_recall >= 0.9, summary
    assert overall.precision >= 0.5, summary
    assert overall.median_delay is not None and overall.median_delay <= 1, summary
    assert {s.name for s in scenarios} == set(SCENARIOS), summary
    assert all(s.insider_recall == 1.0 for s in scenarios), summary


def test_only_evaluate_reads_labels() -> None:
    """The detectors and the pipeline never see the answer key."""
    readers = []
    for path in sorted((REPO / "insiderwatch").rglob("*.py")) + sorted(
        (REPO / "detectors").rglob("*.py")
    ):
        text = path.read_text(encoding="utf-8")
        if re.search(r"labels\.csv|read_labels|read_answers|insiders\.csv|ANSWER_", text):
            readers.append(path.relative_to(REPO).as_posix())
    # samples and the CERT writer write the key, evaluate and the CERT adapter's read_answers
    # read it, the CLI's evaluate command and the analysts' backtest pass it to evaluate.
    assert readers == [
        "insiderwatch/adapters/cert.py",
        "insiderwatch/adapters/cert_writer.py",
        "insiderwatch/analyst.py",
        "insiderwatch/cli.py",
        "insiderwatch/evaluate.py",
        "insiderwatch/samples.py",
    ]
    cli = (REPO / "insiderwatch" / "cli.py").read_text(encoding="utf-8")
    uses = [m.start() for m in re.finditer(r"read_labels\(|read_answers", cli)]
    evaluate_def = cli.index("def evaluate_command")
    assert uses and all(u > evaluate_def for u in uses)
    analyst = (REPO / "insiderwatch" / "analyst.py").read_text(encoding="utf-8")
    backtest = analyst[analyst.index("def backtest(") : analyst.index("def sweep(")]
    # The labels a period carries are used in one place: the backtest's call to evaluate.
    assert analyst.count("period.labels") == backtest.count("period.labels") > 0
    assert "evaluate(sent, period.labels" in backtest
