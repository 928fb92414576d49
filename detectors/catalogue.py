"""``detectors/README.md``, generated from every detector's metadata so it cannot drift."""

from __future__ import annotations

from pathlib import Path

from detectors.base import HERE, PIPELINE_PATH, load_meta, read_toml, rule_ids

DOC_PATH = HERE / "README.md"

_INTRO = """\
# Detectors

Generated from `rules/*.toml` and `pipeline.toml` by `insiderwatch detectors write-docs`; do
not edit by hand.

One detector per stem: `rules/<id>.py` is a pure function from the day's evidence (lazy polars
frames of user-day features with past-only baselines, and the annotated events) to findings;
`rules/<id>.toml` holds its metadata, its parameters (each with a doc line) and its own test
cases, which `tests/test_detectors.py` runs through the real pipeline. The isolation-forest
model is `models/isolation_forest.py`. Analysts override any parameter or setting in
[`tuning.toml`](tuning.toml) (`[rules.<id>]`, `[baseline]`, `[model]`, `[scoring]`, and
`[lists]`, which replaces the site config's reference lists of the same name); an unknown key
or a wrong type fails at load, naming the key. The notebooks in `notebooks/` sweep and backtest
any of these through `insiderwatch.analyst` before a change is written here.

A day's findings and the model's score become one 0–100 risk: the strongest finding's points by
severity, a few points for each further detector, the model's points, and boosters (leaver,
priority person, 極秘 content, several exfiltration channels, collection and exfiltration on
the same day) when there is evidence to boost. User-days at or above the alert threshold become
alerts; the daily review budget (1 % of headcount by default) ranks them and decides which are
sent to people.
"""


def catalogue_markdown() -> str:
    parts = [_INTRO, "\n## Rules\n"]
    parts.append("| id | title | kind | severity | channel | METI items | status |")
    parts.append("|---|---|---|---|---|---|---|")
    metas = {stem: load_meta(stem) for stem in rule_ids()}
    for stem, m in metas.items():
        items = ", ".join(str(i) for i in m.meti)
        parts.append(
            f"| [`{stem}`](rules/{stem}.toml) | {m.title} | {m.kind} | {m.severity} | "
            f"{m.channel} | {items} | {m.status} |"
        )
    for stem, m in metas.items():
        parts.append(f"\n### `{stem}` — {m.title}\n")
        parts.append(" ".join(m.description.split()) + "\n")
        parts.append(f"**Misses:** {m.misses}\n")
        parts.append(
            "**False positives:** "
            + " ".join(f"({i}) {fp}" for i, fp in enumerate(m.false_positives, 1))
            + "\n"
        )
        parts.append("**Runbook:**\n")
        parts.extend(f"{i}. {step}" for i, step in enumerate(m.runbook, 1))
        parts.append("\n**The supervisor confirms with the person (METI 16):**\n")
        parts.extend(f"- {question}" for question in m.confirm)
        if m.params:
            parts.append("\n| parameter | default | meaning |\n|---|---|---|")
            parts.extend(f"| {k} | {v.value} | {v.doc} |" for k, v in m.params.items())
    parts.append("\n## Baselines, model and scoring (`pipeline.toml`)\n")
    parts.append("| setting | default | meaning |\n|---|---|---|")
    for section, values in read_toml(PIPELINE_PATH).items():
        for key, spec in values.items():
            parts.append(f"| {section}.{key} | {spec['value']} | {spec['doc']} |")
    return "\n".join(parts) + "\n"


def write_docs(path: Path = DOC_PATH) -> Path:
    path.write_text(catalogue_markdown(), encoding="utf-8")
    return path
