"""The daily reports: one for the security team, one per supervisor.

The security report ranks the day's alerts as cards (severity, score, reasons with the usual
and peer values, the detectors' runbook steps, a small evidence table and a 30-day sparkline)
under a summary (trend charts, channels, the leavers list and the day's data quality).

A supervisor's report holds only their people (their direct reports, or everyone below them
with ``report.supervisor_scope = "chain"``) and says what to confirm with each person. Every
string that goes into a supervisor's report is scrubbed: a mention of anyone outside their
people (an id, name or address inside a path, subject or recipient list) is replaced.

Everything is rendered through autoescaping templates with a content-security policy that
allows no script and no outside resource.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from insiderwatch import charts
from insiderwatch.alerts import list_alerts
from insiderwatch.config import Config
from insiderwatch.db import Database
from insiderwatch.leavers import list_leavers
from insiderwatch.lookback import amount
from insiderwatch.privacy import Identities, keep_only, pseudonymise_all, scrub_tree
from insiderwatch.reasons import translate
from insiderwatch.store import EventStore, file_name_of, io_path, io_paths, safe_child
from schemas.features import MOVED_BYTES

TEMPLATES = Path(__file__).resolve().parent / "templates"
SOURCES = ("file_access", "mail", "web", "print", "device", "logon")
SEVERITIES = ("critical", "high", "medium", "low")
MODEL_ID = "isolation_forest"


@cache
def labels(language: str) -> dict[str, str]:
    with (TEMPLATES / "labels.toml").open("rb") as fh:
        return tomllib.load(fh)[language]


@dataclass(frozen=True)
class DetectorText:
    title: str
    runbook: tuple[str, ...]
    confirm: tuple[str, ...]


@cache
def detector_texts(language: str) -> dict[str, DetectorText]:
    """Title, runbook and the supervisor's questions of every detector, in ``language``."""
    from detectors.base import load_meta, rule_ids

    texts = {}
    for stem in rule_ids():
        meta = load_meta(stem)
        source = meta.ja if language == "ja" else meta
        texts[stem] = DetectorText(source.title, tuple(source.runbook), tuple(source.confirm))
    words = labels(language)
    texts[MODEL_ID] = DetectorText(
        words["model_title"], (words["model_runbook"],), (words["model_confirm"],)
    )
    return texts


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(
            enabled_extensions=("html", "html.j2"), disabled_extensions=("txt.j2",), default=True
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = lambda text, **values: text.format(**values)
    return env


# --- what the reports are made of -------------------------------------------------------------


def teams(roster: pl.DataFrame, scope: str, day: date | None = None) -> dict[str, list[str]]:
    """Each supervisor's people: direct reports, or with ``chain`` everyone below them.

    A supervisor who has left by ``day`` (their last day is before it) gets no report; their
    people go to the nearest supervisor above them who is still there.
    """
    boss_of = {u: b for u, b in roster.select("user", "supervisor").iter_rows() if b and b != u}
    gone = set()
    if day is not None and "last_day" in roster.columns:
        gone = set(roster.filter(pl.col("last_day") < day)["user"].to_list())

    known = set(roster["user"].to_list())

    def reporting_line(user: str) -> str | None:
        boss, seen = boss_of.get(user), {user}
        while boss in gone:
            if boss in seen:  # a loop of departed supervisors
                return None
            seen.add(boss)
            boss = boss_of.get(boss)
        return boss if boss in known else None

    direct: dict[str, list[str]] = {}
    for user in roster["user"].to_list():
        boss = reporting_line(user)
        if boss is not None and boss != user:
            direct.setdefault(boss, []).append(user)
    if scope == "direct":
        return {boss: sorted(people) for boss, people in direct.items()}
    below: dict[str, list[str]] = {}
    for boss in direct:
        seen: set[str] = set()
        stack = list(direct[boss])
        while stack:
            person = stack.pop()
            if person in seen or person == boss:
                continue
            seen.add(person)
            stack.extend(direct.get(person, []))
        below[boss] = sorted(seen)
    return below


def _evidence_rows(
    store: EventStore, refs: dict[str, list[str]], day: date, config: Config
) -> dict[str, list[dict[str, str]]]:
    """The referenced event lines, per reference, as short table rows. Mail bodies are
    never read into a row."""
    wanted = {ref for lines in refs.values() for ref in lines}
    if not wanted:
        return {}
    files = {ref.rsplit(":", 1)[0] for ref in wanted}
    tz = config.site.timezone
    local = pl.col("timestamp").dt.convert_time_zone(tz).dt.strftime("%Y-%m-%d %H:%M")
    found: dict[str, dict[str, str]] = {}
    for source in SOURCES:
        parts = store.existing(
            "events", source, (day - timedelta(days=1), day, day + timedelta(days=1))
        )
        if not parts:
            continue
        scan = pl.scan_parquet(io_paths(parts)).filter(pl.col("source_file").is_in(sorted(files)))
        ref = pl.format("{}:{}", pl.col("source_file"), pl.col("source_line"))
        scan = scan.with_columns(ref=ref, when=local).filter(pl.col("ref").is_in(sorted(wanted)))
        for row in _describe(source, scan).collect().iter_rows(named=True):
            found[row["ref"]] = row
    return {
        alert: [found[r] for r in dict.fromkeys(lines) if r in found]
        for alert, lines in refs.items()
    }


def _joined(column: str) -> pl.Expr:
    return pl.col(column).list.join(", ")


def _describe(source: str, scan: pl.LazyFrame) -> pl.LazyFrame:
    """One source's events as (when, source, action, object, detail, size, classification)."""
    text = pl.lit("")
    if source == "file_access":
        shape = dict(
            action=pl.col("action"),
            object=pl.col("path"),
            detail=pl.concat_str(
                [pl.col("destination").fill_null(""), pl.col("system").fill_null("")],
                separator=" · ",
            ).str.strip_chars(" ·"),
            size=pl.col("bytes"),
            classification=pl.col("classification").fill_null(""),
        )
    elif source == "mail":
        shape = dict(
            action=pl.col("direction"),
            object=pl.concat_str(
                [pl.col("subject").fill_null(""), _joined("attachment_names")], separator=" · "
            ).str.strip_chars(" ·"),
            detail=pl.concat_list("recipients", "cc", "bcc").list.join(", "),
            size=pl.col("size_bytes"),
            classification=text,
        )
    elif source == "web":
        shape = dict(
            action=pl.col("action"),
            object=pl.col("url"),
            detail=pl.col("host").fill_null(""),
            size=pl.col("bytes_out"),
            classification=text,
        )
    elif source == "print":
        shape = dict(
            action=pl.format("print {} × {}", pl.col("pages"), pl.col("copies")),
            object=pl.col("document"),
            detail=pl.col("printer").fill_null(""),
            size=pl.col("bytes"),
            classification=text,
        )
    elif source == "device":
        shape = dict(
            action=pl.col("activity"),
            object=pl.col("device_class").fill_null(""),
            detail=pl.col("host").fill_null(""),
            size=pl.lit(None, dtype=pl.Int64),
            classification=text,
        )
    else:
        shape = dict(
            action=pl.col("activity"),
            object=pl.col("host").fill_null(""),
            detail=pl.when(pl.col("remote")).then(pl.lit("remote")).otherwise(pl.lit("")),
            size=pl.lit(None, dtype=pl.Int64),
            classification=text,
        )
    return scan.select(
        "ref",
        "when",
        pl.lit(source).alias("source"),
        **{k: v.cast(pl.String) if k != "size" else v for k, v in shape.items()},
    )


def _moved_per_day(
    store: EventStore, users: list[str], day: date, days: int
) -> dict[str, list[float]]:
    """Each person's bytes moved per day for the ``days`` days ending ``day`` (0 when idle)."""
    start = day - timedelta(days=days - 1)
    calendar = [start + timedelta(days=i) for i in range(days)]
    parts = store.existing("features", "user_day", calendar)
    if not users:
        return {}
    out = {u: [0.0] * days for u in users}
    if not parts:
        return out
    present = set(pl.read_parquet_schema(io_path(parts[-1])))
    moved = [c for c in MOVED_BYTES if c in present]
    frame = (
        pl.scan_parquet(io_paths(parts), missing_columns="insert", extra_columns="ignore")
        .filter(pl.col("user").is_in(users))
        .select("user", "local_date", total=pl.sum_horizontal([pl.col(c) for c in moved]))
        .collect()
    )
    for user, when, total in frame.iter_rows():
        out[user][(when - start).days] = float(total or 0)
    return out


def _alert_days(db: Database, users: list[str], start: date, end: date) -> set[tuple[str, date]]:
    if not users:
        return set()
    rows = db.query(
        "SELECT user_id, alert_date FROM alerts WHERE budgeted AND alert_date BETWEEN ? AND ?",
        (start, end),
    )
    wanted = set(users)
    return {(u, d) for u, d in rows if u in wanted}


def _trend(db: Database, day: date, days: int) -> tuple[list[date], pl.DataFrame]:
    start = day - timedelta(days=days - 1)
    rows = db.query(
        "SELECT alert_date, severity, department FROM alerts "
        "WHERE budgeted AND alert_date BETWEEN ? AND ?",
        (start, day),
    )
    frame = pl.DataFrame(
        rows,
        schema={"alert_date": pl.Date, "severity": pl.String, "department": pl.String},
        orient="row",
    )
    return [start + timedelta(days=i) for i in range(days)], frame


def _quality(db: Database, store: EventStore, day: date) -> dict[str, Any]:
    """The latest ingest's counts per source for the day, and quarantine reasons."""
    rows = db.query(
        "SELECT c.source, c.files, c.rows_read, c.stored, c.quarantined, c.duplicates, c.gate, "
        "r.started_at FROM ingest_counts c JOIN runs r ON r.run_id = c.run_id "
        "WHERE c.day = ? ORDER BY r.started_at DESC, c.source",
        (day,),
    )
    latest: dict[str, dict[str, Any]] = {}
    for source, files, read, stored, quarantined, duplicates, gate, _ in rows:
        latest.setdefault(
            source,
            {
                "source": source,
                "files": files,
                "rows_read": read,
                "stored": stored,
                "quarantined": quarantined,
                "duplicates": duplicates,
                "gate": gate or "",
                "problem": bool(quarantined) or (gate or "").startswith("failed"),
            },
        )
    reasons: dict[str, int] = {}
    for source in SOURCES:
        part = store.partition("quarantine", source, day)
        if part.exists():
            counted = pl.read_parquet(io_path(part), columns=["reason"]).group_by("reason").len()
            for reason, n in counted.iter_rows():
                key = f"{source}: {reason}"
                reasons[key] = reasons.get(key, 0) + n
    sources = [latest[s] for s in sorted(latest)]
    return {
        "sources": sources,
        "reasons": sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])),
        "problem": any(s["problem"] for s in sources),
        "recorded": bool(sources),
    }


def _findings(db: Database, alert_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    if not alert_ids:
        return {}
    marks = ", ".join("?" for _ in alert_ids)
    rows = db.query(
        f"SELECT alert_id, detector, severity, points, channel FROM findings "
        f"WHERE alert_id IN ({marks}) ORDER BY alert_id, points DESC, detector",
        alert_ids,
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for alert, detector, severity, points, channel in rows:
        out.setdefault(alert, []).append(
            {"detector": detector, "severity": severity, "points": points, "channel": channel}
        )
    return out


# --- assembling the context -------------------------------------------------------------------


@dataclass
class DailyData:
    """Everything the day's reports show, read once and shared by all of them."""

    day: date
    language: str
    cards: list[dict[str, Any]]
    over_budget: int
    roster: pl.DataFrame
    people: dict[str, dict[str, Any]]
    leavers: list[dict[str, Any]]
    quality: dict[str, Any]
    trend_days: list[date]
    trend: pl.DataFrame
    channels: list[tuple[str, int]]
    spark_days: int
    identities: Identities = field(repr=False)


def _card(
    alert: dict[str, Any],
    people: dict[str, dict[str, Any]],
    findings: list[dict[str, Any]],
    evidence: list[dict[str, str]],
    spark: Markup,
    language: str,
    evidence_rows: int,
) -> dict[str, Any]:
    words = labels(language)
    texts = detector_texts(language)
    person = people.get(alert["user_id"], {})
    boss = people.get(alert["supervisor"] or "", {})
    ordered = list(dict.fromkeys([*(f["detector"] for f in findings), *alert["detectors"]]))
    known = [d for d in ordered if d in texts]
    rows = [
        {**row, "size": "" if row["size"] is None else amount(float(row["size"]), "bytes")}
        for row in evidence[:evidence_rows]
    ]
    return {
        "alert_id": alert["alert_id"],
        "rank": alert["rank"],
        "user": alert["user_id"],
        "name": alert["name"] or person.get("name") or "",
        "email": person.get("email") or "",
        "department": alert["department"] or "",
        "role": person.get("role") or "",
        "supervisor": alert["supervisor"] or "",
        "supervisor_name": boss.get("name") or "",
        "score": alert["score"],
        "severity": alert["severity"],
        "severity_label": words[f"sev_{alert['severity']}"],
        "status": alert["status"],
        "status_label": words.get(f"status_{alert['status']}", alert["status"]),
        "reasons": [translate(reason, language) for reason in alert["reasons"]],
        "detectors": [{"id": d, "title": texts[d].title} for d in known],
        "runbook": [{"title": texts[d].title, "steps": list(texts[d].runbook)} for d in known],
        "confirm": list(dict.fromkeys(q for d in known for q in texts[d].confirm)),
        "evidence": rows,
        "evidence_more": max(len(set(alert["evidence"])) - len(rows), 0),
        "spark": spark,
    }


def load_daily(
    store: EventStore, db: Database, day: date, config: Config, language: str | None = None
) -> DailyData:
    language = language or config.report.language
    words = labels(language)
    roster = pl.read_parquet(io_path(store.roster_path()))
    people = {row["user"]: row for row in roster.iter_rows(named=True)}
    alerts = list_alerts(db, day, day).sort("rank")
    over = db.query("SELECT COUNT(*) FROM alerts WHERE alert_date = ? AND NOT budgeted", (day,))[0][
        0
    ]
    alert_rows = list(alerts.iter_rows(named=True))
    users = sorted({a["user_id"] for a in alert_rows})
    findings = _findings(db, [a["alert_id"] for a in alert_rows])
    refs = {a["alert_id"]: a["evidence"] for a in alert_rows}
    evidence = _evidence_rows(store, refs, day, config)
    days = config.report.sparkline_days
    start = day - timedelta(days=days - 1)
    moved = _moved_per_day(store, users, day, days)
    marked = _alert_days(db, users, start, day)
    cards = []
    for a in alert_rows:
        series = moved.get(a["user_id"], [0.0] * days)
        flags = [(a["user_id"], start + timedelta(days=i)) in marked for i in range(days)]
        title = words["spark_title"].format(
            start=start, end=day, peak=amount(max(series, default=0.0), "bytes")
        )
        cards.append(
            _card(
                a,
                people,
                findings.get(a["alert_id"], []),
                evidence.get(a["alert_id"], []),
                charts.sparkline(series, flags, title),
                language,
                config.report.evidence_rows,
            )
        )
    channels: dict[str, int] = {}
    for found in findings.values():
        for channel in {f["channel"] for f in found if f["channel"] and f["points"] > 0}:
            channels[channel] = channels.get(channel, 0) + 1
    trend_days, trend = _trend(db, day, config.report.trend_days)
    leavers = [
        {**row, "lookback_verdict": translate(row["lookback_verdict"] or "", language)}
        for row in list_leavers(db, day).iter_rows(named=True)
    ]
    return DailyData(
        day=day,
        language=language,
        cards=cards,
        over_budget=int(over),
        roster=roster,
        people=people,
        leavers=leavers,
        quality=_quality(db, store, day),
        trend_days=trend_days,
        trend=trend,
        channels=sorted(channels.items(), key=lambda kv: (-kv[1], kv[0])),
        spark_days=days,
        identities=Identities(roster),
    )


def _severity_chart(data: DailyData) -> Markup:
    counts = {
        sev: [
            data.trend.filter((pl.col("alert_date") == d) & (pl.col("severity") == sev)).height
            for d in data.trend_days
        ]
        for sev in SEVERITIES
    }
    return charts.stacked_bars(
        data.trend_days, counts, charts.SEVERITY_COLOURS, ylabel="alerts per day"
    )


def _department_grid(data: DailyData) -> dict[str, Any]:
    """Departments × days as a table of counts (an HTML heat map: department names are
    Japanese and render in the browser's fonts)."""
    counts = data.trend.group_by("department", "alert_date").len()
    grid: dict[str, list[int]] = {}
    index = {d: i for i, d in enumerate(data.trend_days)}
    for department, when, n in counts.iter_rows():
        row = grid.setdefault(department or "-", [0] * len(data.trend_days))
        row[index[when]] = int(n)
    top = max((max(r) for r in grid.values()), default=0) or 1
    return {
        "days": [d.strftime("%m-%d") for d in data.trend_days],
        "rows": [
            {"department": dep, "cells": [(n, round(n / top, 2)) for n in row], "total": sum(row)}
            for dep, row in sorted(grid.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
        ],
    }


def security_context(
    data: DailyData, unrouted: Iterable[str] = (), pseudonymise_key: bytes | None = None
) -> dict[str, Any]:
    words = labels(data.language)
    context: dict[str, Any] = {
        "t": words,
        "day": data.day.isoformat(),
        "pseudonymised": pseudonymise_key is not None,
        "cards": data.cards,
        "over_budget": data.over_budget,
        "people_flagged": len({c["user"] for c in data.cards}),
        "leavers": data.leavers,
        "quality": data.quality,
        "severity_chart": _severity_chart(data),
        "department_grid": _department_grid(data),
        "channels_chart": charts.horizontal_bars(
            [c for c, _ in data.channels], [n for _, n in data.channels], "alerts"
        )
        if data.channels
        else None,
        "trend_days": len(data.trend_days),
        "spark_days": data.spark_days,
        "unrouted": [c for c in data.cards if c["user"] in set(unrouted)],
    }
    if pseudonymise_key is not None:
        choose = pseudonymise_all(pseudonymise_key, words["shared_name"])
        context = scrub_tree(context, lambda text: data.identities.replace(text, choose))
        for card in context["cards"]:
            card["name"] = card["email"] = card["supervisor_name"] = ""
        for row in context["leavers"]:
            row["name"] = ""
    return context


def supervisor_context(data: DailyData, people: list[str]) -> dict[str, Any]:
    """One supervisor's report: only their people's alerts (not dismissed) and leavers,
    with every mention of anyone else replaced."""
    words = labels(data.language)
    mine = set(people)
    cards = [c for c in data.cards if c["user"] in mine and c["status"] != "dismissed"]
    leavers = [row for row in data.leavers if row["user_id"] in mine]
    context = {
        "t": words,
        "day": data.day.isoformat(),
        "team_size": len(people),
        "spark_days": data.spark_days,
        "cards": [
            {
                k: v
                for k, v in c.items()
                if k not in ("runbook", "supervisor", "supervisor_name", "status_label")
            }
            for c in cards
        ],
        "leavers": [
            {k: row[k] for k in ("user_id", "name", "notice_date", "last_day")} for row in leavers
        ],
    }
    choose = keep_only(mine, words["other_person"])
    return scrub_tree(context, lambda text: data.identities.replace(text, choose))


# --- writing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SupervisorReport:
    supervisor: str
    email: str
    people: int
    flagged: int
    html: Path
    text: Path


@dataclass
class DailyReports:
    day: date
    folder: Path
    security: Path
    supervisors: list[SupervisorReport]
    alerts: int
    unrouted: list[str]
    manifest: Path | None  # None for the pseudonymised overview alone
    language: str


def report_folder(store: EventStore, day: date) -> Path:
    return store.root / "reports" / day.isoformat()


def write_daily_reports(
    store: EventStore,
    db: Database,
    day: date,
    config: Config,
    *,
    language: str | None = None,
    pseudonymise_key: bytes | None = None,
    out: Path | None = None,
) -> DailyReports:
    """Render the security report and every supervisor's report for ``day``; a rerun
    replaces them. With ``pseudonymise_key`` only the pseudonymised security overview is
    written (``security-pseudonymised.html``), and the named reports are left as they are."""
    data = load_daily(store, db, day, config, language)
    env = environment()
    folder = out or report_folder(store, day)
    folder.mkdir(parents=True, exist_ok=True)
    team_of = teams(data.roster, config.report.supervisor_scope, day)
    flagged_users = {c["user"] for c in data.cards}
    routed = flagged_users & {person for people in team_of.values() for person in people}
    unrouted = sorted(flagged_users - routed)
    security_name = "security-pseudonymised.html" if pseudonymise_key else "security.html"
    security = folder / security_name
    security.write_text(
        env.get_template("security.html.j2").render(
            **security_context(data, unrouted, pseudonymise_key)
        ),
        encoding="utf-8",
    )
    if pseudonymise_key is not None:
        return DailyReports(
            day, folder, security, [], len(data.cards), unrouted, None, data.language
        )
    (folder / "supervisors").mkdir(exist_ok=True)
    for stale in (folder / "supervisors").glob("*"):
        stale.unlink()
    written = []
    html_template = env.get_template("supervisor.html.j2")
    text_template = env.get_template("supervisor.txt.j2")
    for boss in sorted(team_of):
        people = team_of[boss]
        context = supervisor_context(data, people)
        html = safe_child(folder, "supervisors", f"{file_name_of(boss)}.html")
        text = html.with_suffix(".txt")
        html.write_text(html_template.render(**context), encoding="utf-8")
        text.write_text(text_template.render(**context), encoding="utf-8")
        written.append(
            SupervisorReport(
                supervisor=boss,
                email=data.people.get(boss, {}).get("email") or "",
                people=len(people),
                flagged=len(context["cards"]),
                html=html,
                text=text,
            )
        )
    manifest = folder / "index.json"
    manifest.write_text(
        json.dumps(
            {
                "day": day.isoformat(),
                "language": data.language,
                "alerts": len(data.cards),
                "security": security.name,
                "unrouted": unrouted,
                "supervisors": [
                    {
                        "supervisor": r.supervisor,
                        "email": r.email,
                        "people": r.people,
                        "flagged": r.flagged,
                        "html": str(r.html.relative_to(folder)),
                        "text": str(r.text.relative_to(folder)),
                    }
                    for r in written
                ],
            },
            ensure_ascii=False,
            indent=1,
        ),
        encoding="utf-8",
    )
    return DailyReports(
        day, folder, security, written, len(data.cards), unrouted, manifest, data.language
    )


def counts_line(reports: DailyReports) -> str:
    flagged = sum(1 for r in reports.supervisors if r.flagged)
    return (
        f"{reports.day}: {reports.alerts} alert(s); {len(reports.supervisors)} supervisor "
        f"report(s), {flagged} with people to talk to; written to {reports.folder}"
    )
