"""Sending the day's reports by SMTP: each supervisor gets their own report, the security team
gets the security report.

Every message sent is recorded in the ``deliveries`` table with a digest of its content, so a
rerun (or an Airflow retry) sends nothing twice; a report whose content changed since it was
sent goes out again marked as an update.
"""

from __future__ import annotations

import hashlib
import os
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from insiderwatch.config import Config
from insiderwatch.db import Database
from insiderwatch.reports import DailyReports, labels


class DeliveryError(RuntimeError):
    """The reports cannot be sent (SMTP disabled, no password, server refused)."""


@dataclass(frozen=True)
class Delivery:
    recipient: str
    report: str
    subject: str
    status: str  # sent, updated, unchanged, no address


@dataclass(frozen=True)
class _Outgoing:
    recipients: tuple[str, ...]
    report: str
    subject: str
    html: str
    text: str


def _outgoing(reports: DailyReports, config: Config) -> tuple[list[_Outgoing], list[Delivery]]:
    words = labels(reports.language)
    prefix = f"{config.smtp.subject_prefix} " if config.smtp.subject_prefix else ""
    out, skipped = [], []
    for report in reports.supervisors:
        if report.flagged == 0 and not config.smtp.send_nothing_today:
            continue
        if report.flagged:
            subject = words["mail_subject_supervisor"].format(day=reports.day, n=report.flagged)
        else:
            subject = words["mail_subject_nothing"].format(day=reports.day)
        name = str(report.html.relative_to(reports.folder))
        if not report.email:
            skipped.append(Delivery("", name, prefix + subject, "no address"))
            continue
        out.append(
            _Outgoing(
                (report.email,),
                name,
                prefix + subject,
                report.html.read_text(encoding="utf-8"),
                report.text.read_text(encoding="utf-8"),
            )
        )
    if config.report.security_team:
        subject = words["mail_subject_security"].format(day=reports.day, n=reports.alerts)
        out.append(
            _Outgoing(
                tuple(config.report.security_team),
                reports.security.name,
                prefix + subject,
                reports.security.read_text(encoding="utf-8"),
                f"{subject}\n\n{reports.security}\n",
            )
        )
    return out, skipped


def _message(item: _Outgoing, sender: str, updated: bool) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(item.recipients)
    message["Subject"] = item.subject + (" (updated)" if updated else "")
    message["Date"] = format_datetime(datetime.now().astimezone())
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(item.text)
    message.add_alternative(item.html, subtype="html")
    return message


def _password(config: Config, environ: Mapping[str, str]) -> str:
    value = environ.get(config.smtp.password_env, "")
    if not value:
        raise DeliveryError(
            f"smtp.username is set but the environment variable {config.smtp.password_env} "
            "holding the password is empty"
        )
    return value


def _connect(config: Config, environ: Mapping[str, str]) -> smtplib.SMTP:
    smtp = config.smtp
    try:
        if smtp.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=smtp.timeout_seconds
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
            if smtp.security == "starttls":
                client.starttls()
        if smtp.username:
            client.login(smtp.username, _password(config, environ))
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"cannot reach SMTP server {smtp.host}:{smtp.port}: {exc}") from exc
    return client


def send_reports(
    reports: DailyReports,
    config: Config,
    db: Database,
    environ: Mapping[str, str] | None = None,
    resend: bool = False,
) -> list[Delivery]:
    """Send each report not yet sent with this content; returns what happened to each."""
    if not config.smtp.enabled:
        raise DeliveryError("sending is off: set smtp.enabled = true in the site config")
    environ = os.environ if environ is None else environ
    outgoing, results = _outgoing(reports, config)
    sent_before = {
        (recipient, report): digest
        for recipient, report, digest in db.query(
            "SELECT recipient, report, digest FROM deliveries WHERE day = ?", (reports.day,)
        )
    }
    pending = []
    for item in outgoing:
        digest = hashlib.sha256((item.subject + item.html).encode()).hexdigest()
        key = (", ".join(item.recipients), item.report)
        previous = sent_before.get(key)
        if previous == digest and not resend:
            results.append(Delivery(key[0], item.report, item.subject, "unchanged"))
            continue
        pending.append((item, key, digest, previous is not None))
    if not pending:
        return results
    client = _connect(config, environ)
    try:
        for item, key, digest, updated in pending:
            try:
                client.send_message(_message(item, config.smtp.sender, updated))
            except smtplib.SMTPException as exc:
                raise DeliveryError(f"sending {item.report} to {key[0]} failed: {exc}") from exc
            with db.transaction():
                db.execute(
                    "DELETE FROM deliveries WHERE day = ? AND recipient = ? AND report = ?",
                    (reports.day, key[0], item.report),
                )
                db.execute(
                    "INSERT INTO deliveries (day, recipient, report, digest, sent_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (reports.day, key[0], item.report, digest, datetime.now()),
                )
            status = "updated" if updated else "sent"
            results.append(Delivery(key[0], item.report, item.subject, status))
    finally:
        client.quit()
    return results


def load_reports(folder: Path) -> DailyReports:
    """A day's written reports, from their ``index.json`` (for sending in a later task)."""
    import json
    from datetime import date

    from insiderwatch.reports import SupervisorReport

    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    supervisors = [
        SupervisorReport(
            s["supervisor"],
            s["email"],
            s["people"],
            s["flagged"],
            folder / s["html"],
            folder / s["text"],
        )
        for s in index["supervisors"]
    ]
    return DailyReports(
        date.fromisoformat(index["day"]),
        folder,
        folder / index["security"],
        supervisors,
        index["alerts"],
        index["unrouted"],
        folder / "index.json",
        index["language"],
    )
