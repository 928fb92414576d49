"""``schemas/README.md``, generated from the canonical schema so the docs cannot drift."""

from __future__ import annotations

from pathlib import Path

from schemas import cert, m365
from schemas.canonical import (
    CLASSIFICATION_ALIASES,
    MAIL_STORE_COLUMNS,
    SOURCES,
    STORE_COLUMNS,
)
from schemas.features import FEATURES

DOC_PATH = Path(__file__).with_name("README.md")

_INTRO = """\
# Canonical schemas

Generated from `schemas/canonical.py` by `insiderwatch schemas write-docs`; do not edit by hand.

One folder per source under the landing folder (`<source>/YYYY-MM-DD.csv`, `.csv.gz`, `.jsonl`
or `.parquet`, or any files in a `<source>/YYYY-MM-DD/` folder; any other file name is split by
the local day of its rows), plus the roster at `hr/employees.csv`. Other formats are read
through an adapter (`insiderwatch ingest --format cert|m365`; see the end of this page).
UTF-8 with or without BOM, or CP932. Timestamps are ISO-8601; without an offset they are in the
site time zone. Lists are `;`-separated. Required columns must be in the header; a required
value may still be empty where the table says so.
"""


def schema_markdown() -> str:
    parts = [_INTRO]
    for source in SOURCES.values():
        where = "hr/employees.csv" if source.name == "hr" else f"{source.name}/"
        parts.append(f"\n## `{source.name}` — {source.description}\n\nLanding: `{where}`\n")
        parts.append("| column | type | required | may be empty | allowed / limits | meaning |")
        parts.append("|---|---|---|---|---|---|")
        for c in source.columns:
            limits = ", ".join(c.allowed)
            if c.minimum is not None:
                limits = f">= {c.minimum}"
            if c.maximum is not None:
                limits = (limits + ", " if limits else "") + f"<= {c.maximum:,}"
            if c.max_chars:
                limits = (limits + "; " if limits else "") + f"<= {c.max_chars} chars"
            parts.append(
                f"| {c.name} | {c.kind} | {'yes' if c.required else 'no'} | "
                f"{'yes' if c.nullable else 'no'} | {limits} | {c.description} |"
            )
    parts.append("\n## Columns the event store adds\n")
    parts.append("| column | meaning |\n|---|---|")
    parts.extend(f"| {k} | {v} |" for k, v in STORE_COLUMNS.items())
    parts.extend(f"| {k} (mail) | {v} |" for k, v in MAIL_STORE_COLUMNS.items())
    parts.append("\n## User-day evidence (`features/user_day`, one row per person and day)\n")
    parts.append(
        "Computed once per day from the event store and shared by the rules and the model. "
        "Next to each feature `f` the detectors see `f__own` (the person's median over active "
        "days of the baseline window, or the peers' for a newcomer), `f__own_max`, `f__peer` "
        "and the deviations `f__own_z` / `f__peer_z` (standard deviations of log1p), all from "
        "days before the scored day.\n"
    )
    parts.append("| feature | unit | channel | meaning |\n|---|---|---|---|")
    parts.extend(f"| {f.name} | {f.unit} | {f.channel} | {f.description} |" for f in FEATURES)
    parts.append("\n## Classification labels\n")
    parts.append("| label (case-insensitive) | stored as |\n|---|---|")
    parts.extend(f"| {k} | {v} |" for k, v in CLASSIFICATION_ALIASES.items())
    parts.extend(_vendor_formats())
    return "\n".join(parts) + "\n"


def _vendor_formats() -> list[str]:
    parts = ["\n## Vendor formats\n"]
    parts.append(
        "An adapter stages a vendor export as canonical files; quarantine rows still name the "
        "vendor file and line. `--format auto` (the default) tells the formats apart by their "
        "files.\n"
    )
    parts.append("### CERT insider-threat test data (`--format cert`, `schemas/cert.py`)\n")
    parts.append(
        f"Timestamps `{cert.TIMESTAMP_FORMAT}`, local time (the site time zone). Ids are not "
        f"kept. `{'`, `'.join(cert.IGNORED_FILES)}` is ignored. Roster from "
        f"`{cert.LDAP_FOLDER}/YYYY-MM.csv`: department = first non-empty of "
        f"{', '.join(cert.DEPARTMENT_COLUMNS)}; supervisor name resolved to an id in the same "
        "snapshot; hire_date = first month listed; last_day = end of the last month listed "
        "for anyone missing from the last snapshot; personal_emails = the non-work addresses "
        "a person sends from in email.csv.\n"
    )
    parts.append(
        "| CERT file | canonical source | headers accepted | activity |\n|---|---|---|---|"
    )
    for f in cert.EVENT_FILES:
        layouts = "<br>".join(",".join(layout) for layout in f.layouts)
        activity = ", ".join(f"{k} → {v}" for k, v in f.activity.items())
        parts.append(f"| {f.name} | {f.source} | {layouts} | {activity} |")
    parts.append(
        f"\nr4 `file.csv` rows are copies to removable media ({' / '.join(cert.R4_FILE_ACTION)}); "
        "r4 `http.csv` rows are visits; r4 `email.csv` rows are sent mail. Devices are "
        f"`{cert.DEVICE_CLASS}`. r6 attachments `path(size)` give attachment names and bytes. "
        "Answer key for `insiderwatch evaluate --cert-answers`: `answers/insiders.csv` "
        f"({', '.join(cert.ANSWER_COLUMNS)}); a labelled day is a day with a record in the "
        "insider's event file.\n"
    )
    parts.append("### Microsoft 365 (`--format m365`, `schemas/m365.py`)\n")
    parts.append(
        "Needs the canonical roster `hr/employees.csv`; users are tied by UPN = work address. "
        "Audit times are UTC.\n"
    )
    parts.append("| audit operation | source | action | destination |\n|---|---|---|---|")
    for op, (action, dest) in m365.FILE_OPERATIONS.items():
        parts.append(f"| {op} | file_access | {action} | {dest or ''} |")
    for op in m365.SHARING_OPERATIONS:
        parts.append(f"| {op} | file_access | share | cloud if outside the company, else share |")
    for op, activity in m365.LOGON_OPERATIONS.items():
        parts.append(f"| {op} | logon | {activity} | |")
    parts.append(
        "\nOther operations are counted and reported, not staged. Message trace (one row per "
        "recipient, folded into one mail per message):\n"
    )
    parts.append(
        "| export | timestamp | sender | recipients | subject | size |\n|---|---|---|---|---|---|"
    )
    for name, roles in m365.TRACE_LAYOUTS.items():
        parts.append(
            f"| {name} | {roles['timestamp']} | {roles['sender']} | {roles['recipient']} | "
            f"{roles['subject']} | {roles['size']} |"
        )
    return parts


def write_docs(path: Path = DOC_PATH) -> Path:
    path.write_text(schema_markdown(), encoding="utf-8")
    return path
