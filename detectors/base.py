"""The detector contract, its metadata, and the registry that loads every detector.

A rule is ``detectors/rules/<id>.py`` with a typed ``Params`` model and a pure
``detect(evidence, params) -> LazyFrame`` function, beside ``detectors/rules/<id>.toml`` holding
its metadata, parameter defaults (each with a doc line) and test cases. Parameter values are
overridden from one analysts' file, ``detectors/tuning.toml``; an unknown key or a wrong type
fails at load with the key named.
"""

from __future__ import annotations

import importlib
import importlib.util
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError

HERE = Path(__file__).resolve().parent
RULES_DIR = HERE / "rules"
MODELS_DIR = HERE / "models"
TUNING_PATH = HERE / "tuning.toml"
PIPELINE_PATH = HERE / "pipeline.toml"

SEVERITIES = ("info", "low", "medium", "high", "critical")
STATUSES = ("stable", "experimental", "deprecated")
Severity = Literal["info", "low", "medium", "high", "critical"]

# What every rule returns (extra columns are dropped; missing optional ones are filled).
FINDING_COLUMNS: dict[str, pl.DataType] = {
    "user": pl.String(),
    "local_date": pl.Date(),
    "value": pl.Float64(),
    "reason": pl.String(),
    "evidence": pl.List(pl.String()),
    "severity": pl.String(),
    "top_secret": pl.Boolean(),
}
REQUIRED_FINDING_COLUMNS = ("user", "local_date", "value", "reason")


class TuningError(ValueError):
    """A tuning file is malformed; the message names the file and the dotted key."""


class Evidence:
    """What a detector sees: the scored user-days and the annotated events of those days.

    ``days`` has the features of ``schemas.features`` with their ``__own``, ``__own_max``,
    ``__peer``, ``__own_z`` and ``__peer_z`` baselines, plus the roster as of each day
    (department, role, peer_group, priority, notice_date — null until it is on or before the
    day —, last_day, personal_emails). ``events`` maps a source name to its annotated events.
    """

    def __init__(
        self,
        days: pl.LazyFrame,
        events: Mapping[str, pl.LazyFrame],
        external_mail: pl.LazyFrame | None = None,
    ) -> None:
        self.days = days
        self.events = dict(events)
        self._external_mail = external_mail

    def source(self, name: str) -> pl.LazyFrame | None:
        return self.events.get(name)

    def external_mail(self) -> pl.LazyFrame | None:
        """Outbound mail with at least one external recipient, annotated as in
        ``events["mail"]``: a few percent of a day's mail. The daily pipeline hands over the
        copy its features stage kept for the day, so rules about mail leaving the company do
        not annotate every mail again; otherwise it is drawn from ``events["mail"]``."""
        if self._external_mail is not None:
            return self._external_mail
        mail = self.events.get("mail")
        return None if mail is None else mail.filter(is_external_mail())

    def activity(self) -> pl.LazyFrame | None:
        """Every event the person did (received mail left out), with its time flags."""
        columns = ("user", "local_date", "timestamp", "source_file", "source_line")
        parts = [
            (frame.filter(pl.col("direction") == "outbound") if name == "mail" else frame).select(
                *columns, "after_hours", "night"
            )
            for name, frame in self.events.items()
        ]
        return pl.concat(parts) if parts else None


def is_external_mail() -> pl.Expr:
    """An annotated mail that leaves the company: outbound, an external recipient. (``external``
    implies outbound; saying so lets the direction filter reach the Parquet scan, before any
    address is looked at.)"""
    return (pl.col("direction") == "outbound") & pl.col("external").fill_null(False)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Params(_Strict):
    """Base for each rule's typed parameters (strict: a string never passes for a number)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ParamSpec(_Strict):
    value: Any
    doc: str = Field(min_length=1)


class Case(_Strict):
    """A positive or negative example, run by ``tests/test_detectors.py``.

    ``events`` happen on ``day``; ``history`` is repeated on each of the ``history_days``
    working days before it (for every user in ``history_users``) so baselines exist.
    Events name a ``source`` and a local ``time`` (``HH:MM``), optionally ``repeat`` n times
    ``every`` minutes apart; other keys are canonical columns.
    """

    name: str
    expect: bool
    user: str = "u1"
    day: date = date(2024, 6, 12)
    severity: Severity | None = None
    person: dict[str, Any] = Field(default_factory=dict)
    history_days: int = 0
    history_users: list[str] = Field(default_factory=lambda: ["u1", "u2", "u3"])
    history: list[dict[str, Any]] = Field(default_factory=list)
    events: list[dict[str, Any]] = Field(default_factory=list)


class MetaJa(_Strict):
    """The Japanese texts of a detector, for reports in Japanese."""

    title: str = Field(min_length=1)
    runbook: list[str] = Field(min_length=1)
    confirm: list[str] = Field(min_length=1)


class Meta(_Strict):
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    misses: str = Field(min_length=1)
    false_positives: list[str] = Field(min_length=1)
    runbook: list[str] = Field(min_length=1)
    # What the person's supervisor confirms with them (METI item 16), in plain words.
    confirm: list[str] = Field(min_length=1)
    severity: Severity
    status: Literal["stable", "experimental", "deprecated"]
    channel: str = Field(min_length=1)
    kind: Literal["detection", "booster"] = "detection"
    booster: str | None = None
    meti: list[int] = Field(default_factory=list)
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    cases: list[Case] = Field(default_factory=list)
    ja: MetaJa


@dataclass(frozen=True)
class Detector:
    id: str
    meta: Meta
    params: Params
    detect: Callable[[Evidence, Any], pl.LazyFrame] = field(repr=False)

    def run(self, evidence: Evidence) -> pl.LazyFrame:
        """The detector's findings with its id, channel and default severity filled in."""
        found = self.detect(evidence, self.params)
        names = found.collect_schema().names()
        fill = [
            pl.lit(None, dtype=dtype).alias(name)
            for name, dtype in FINDING_COLUMNS.items()
            if name not in names
        ]
        return found.with_columns(fill).select(
            pl.lit(self.id).alias("detector"),
            pl.col("user"),
            pl.col("local_date"),
            pl.col("severity").fill_null(self.meta.severity),
            pl.lit(self.meta.kind).alias("kind"),
            pl.lit(self.meta.booster).cast(pl.String).alias("booster"),
            pl.lit(self.meta.channel).alias("channel"),
            pl.col("value").cast(pl.Float64),
            pl.col("reason"),
            pl.col("evidence").fill_null([]).cast(pl.List(pl.String)),
            pl.col("top_secret").fill_null(False),
        )


def empty() -> pl.LazyFrame:
    """No findings (for a detector whose source is absent today)."""
    return pl.LazyFrame(schema=FINDING_COLUMNS)


def rule_ids() -> list[str]:
    return sorted(p.stem for p in RULES_DIR.glob("*.toml"))


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise TuningError(f"{path}: {exc}") from exc


def _module(stem: str):
    return importlib.import_module(f"detectors.rules.{stem}")


def load_meta(stem: str) -> Meta:
    return Meta.model_validate(read_toml(RULES_DIR / f"{stem}.toml"))


def _errors(exc: ValidationError, prefix: str) -> str:
    return "; ".join(
        f"{prefix}{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )


def load_detectors(overrides: Mapping[str, Mapping[str, Any]] | None = None) -> list[Detector]:
    """Every rule, parameters from its TOML defaults overridden by ``overrides[id]``."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(rule_ids()))
    if unknown:
        raise TuningError(f"unknown detector(s): {', '.join('rules.' + u for u in unknown)}")
    out = []
    for stem in rule_ids():
        try:
            meta = load_meta(stem)
        except ValidationError as exc:
            raise TuningError(f"{RULES_DIR / stem}.toml: {_errors(exc, '')}") from exc
        module = _module(stem)
        values = {name: spec.value for name, spec in meta.params.items()}
        extra = sorted(set(overrides.get(stem, {})) - set(values))
        if extra:
            raise TuningError(
                f"unknown parameter(s): {', '.join(f'rules.{stem}.{k}' for k in extra)}"
            )
        values.update(overrides.get(stem, {}))
        try:
            params = module.Params.model_validate(values)
        except ValidationError as exc:
            raise TuningError(_errors(exc, f"rules.{stem}.")) from exc
        out.append(Detector(stem, meta, params, module.detect))
    return out


def _module_at(path: Path):
    spec = importlib.util.spec_from_file_location(f"_detector_check_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def metadata_problems(rules_dir: Path = RULES_DIR) -> dict[str, list[str]]:
    """Every detector's metadata problems, by id; an empty dict means all are complete."""
    problems: dict[str, list[str]] = {}
    stems = {p.stem for p in rules_dir.glob("*.py") if p.stem != "__init__"}
    stems |= {p.stem for p in rules_dir.glob("*.toml")}
    for stem in sorted(stems):
        found: list[str] = []
        toml_path, py_path = rules_dir / f"{stem}.toml", rules_dir / f"{stem}.py"
        if not py_path.exists():
            found.append("no .py beside the .toml")
        if not toml_path.exists():
            found.append("no .toml beside the .py")
        if found:
            problems[stem] = found
            continue
        if stem != stem.lower() or not stem.replace("_", "").isalnum():
            found.append("id is not snake_case")
        try:
            meta = Meta.model_validate(read_toml(toml_path))
        except (ValidationError, TuningError) as exc:
            detail = _errors(exc, "") if isinstance(exc, ValidationError) else str(exc)
            problems[stem] = [detail]
            continue
        module = _module_at(py_path)
        declared = set(getattr(module, "Params", Params).model_fields)
        if set(meta.params) != declared:
            found.append(
                f"parameters in .toml {sorted(meta.params)} differ from Params {sorted(declared)}"
            )
        if not hasattr(module, "detect"):
            found.append("no detect() function")
        if not any(c.expect for c in meta.cases):
            found.append("no positive case")
        if not any(not c.expect for c in meta.cases):
            found.append("no negative case")
        if meta.kind == "booster" and not meta.booster:
            found.append("a booster detector must name its booster")
        if meta.kind == "detection" and meta.severity == "info":
            found.append("a detection cannot have severity info")
        if found:
            problems[stem] = found
    return problems
