"""Scoring: points, boosters, the alert threshold and the daily budget."""

from __future__ import annotations

from datetime import date

import polars as pl

from detectors.settings import load_tuning
from insiderwatch.detect import MODEL_SCHEMA, empty_findings
from insiderwatch.scoring import alert_id, score

S = load_tuning(None).scoring
DAY = date(2024, 6, 12)


def finding(user: str, detector: str, severity: str, channel: str, **kw) -> dict:
    return {
        "detector": detector,
        "user": user,
        "local_date": DAY,
        "severity": severity,
        "kind": kw.get("kind", "detection"),
        "booster": kw.get("booster"),
        "channel": channel,
        "value": 1.0,
        "reason": f"{detector} for {user}; usual 0; peers 0",
        "evidence": [f"file_access/x.csv:{len(user)}"],
        "top_secret": kw.get("top_secret", False),
    }


def people(users: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user": users,
            "local_date": [DAY] * len(users),
            "name": users,
            "department": ["研究開発部"] * len(users),
            "supervisor": ["u0"] * len(users),
        }
    )


def roster(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {"hire_date": [date(2020, 1, 1)] * n, "last_day": [None] * n},
        schema={"hire_date": pl.Date, "last_day": pl.Date},
    )


def model_rows(points: dict[str, float]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user": list(points),
            "local_date": [DAY] * len(points),
            "model_score": [0.1] * len(points),
            "model_percentile": [0.999] * len(points),
            "model_points": list(points.values()),
            "drivers": [["removable_bytes"]] * len(points),
            "model_reason": ["unusual day for this person (model): removable bytes"] * len(points),
        },
        schema=MODEL_SCHEMA,
    )


def run(findings: list[dict], model: dict[str, float] | None = None, headcount: int = 100):
    frame = pl.DataFrame(findings, schema=empty_findings().schema)
    users = sorted({f["user"] for f in findings} | set(model or {}))
    return score(frame, model_rows(model or {}), people(users), roster(headcount), S, [DAY]).sort(
        "user"
    )


def test_one_medium_finding_stays_below_the_alert_threshold() -> None:
    assert run([finding("u1", "mass_printing", "medium", "print")]).height == 0


def test_points_extra_detectors_and_boosters_add_up() -> None:
    alerts = run(
        [
            finding("u1", "removable_media_copy", "high", "removable", top_secret=True),
            finding("u1", "bulk_file_transfer", "medium", "files"),
            finding("u1", "leaver_window", "info", "hr", kind="booster", booster="leaver"),
        ]
    )
    p, b = S.points, S.boosters
    expected = p["high"] + S.extra_finding_points + b["leaver"] + b["top_secret"]
    expected += b["collect_exfiltrate"]
    assert alerts["score"].to_list() == [min(100, round(expected))]
    reasons = alerts["reasons"][0].to_list()
    assert reasons[0].startswith("removable_media_copy")  # strongest first
    assert "collection and exfiltration on the same day" in reasons
    assert any(r.startswith("leaver_window") for r in reasons)


def test_model_alone_adds_at_most_its_points() -> None:
    alerts = run([], model={"u1": S.alert_threshold - 1})
    assert alerts.height == 0


def test_a_booster_alone_is_not_evidence() -> None:
    boosters = [
        finding("u1", "leaver_window", "info", "hr", kind="booster", booster="leaver"),
        finding("u1", "priority_person", "info", "hr", kind="booster", booster="priority"),
    ]
    assert run(boosters).height == 0


def test_several_channels_on_one_day_are_boosted() -> None:
    single = run([finding("u1", "removable_media_copy", "high", "removable")])
    double = run(
        [
            finding("u1", "removable_media_copy", "high", "removable"),
            finding("u1", "mass_printing", "medium", "print"),
        ]
    )
    gap = double["score"][0] - single["score"][0]
    assert gap == S.extra_finding_points + S.boosters["multi_channel"]


def test_budget_caps_what_reaches_people_by_rank() -> None:
    findings = [
        finding(f"u{i}", "removable_media_copy", sev, "removable")
        for i, sev in enumerate(["critical", "high", "high", "high", "critical"], start=1)
    ]
    alerts = run(findings, headcount=250)  # 1 % of 250 -> 3 a day
    assert alerts.height == 5
    ranked = alerts.sort("rank")
    assert ranked["user"].to_list() == ["u1", "u5", "u2", "u3", "u4"]  # ties by user id
    assert ranked["budgeted"].to_list() == [True, True, True, False, False]


def test_alert_ids_are_stable_and_distinct() -> None:
    assert alert_id("u1", DAY) == alert_id("u1", DAY)
    assert alert_id("u1", DAY) != alert_id("u2", DAY)
    assert alert_id("u1", DAY).startswith("IW-20240612-")
