"""``schemas/README.md``, generated from the canonical schema so the docs cannot drift."""

from __future__ import annotations

from pathlib import Path

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
or `.parquet`; any other file name is split by the local day of its rows), plus the roster at
`hr/employees.csv`. UTF-8 with or without BOM, or CP932. Timestamps are ISO-8601; without an
offset they are in the site time zone. Lists are `;`-separated. Required columns must be in the
header; a required value may still be empty where the table says so.
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
    return "\n".join(parts) + "\n"


def write_docs(path: Path = DOC_PATH) -> Path:
    path.write_text(schema_markdown(), encoding="utf-8")
    return path
