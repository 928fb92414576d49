"""Typed configuration: packaged defaults, overridden by one site file.

Reference lists live here rather than in code (DESIGN: internal domains, free mail, cloud and
transfer sites, job sites, expert networks, competitors, keywords and code names).
"""

from __future__ import annotations

import re
import tomllib
from datetime import date, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from schemas.lists import ListsConfig

DEFAULTS_PATH = Path(__file__).with_name("defaults.toml")
SITE_FILE_NAME = "insiderwatch.toml"


class ConfigError(ValueError):
    """A configuration file is malformed; the message names the file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class SiteConfig(_Strict):
    timezone: str
    internal_domains: tuple[str, ...] = ()
    workday_start: time
    workday_end: time
    night_start: time
    night_end: time
    company_holidays: tuple[str, ...] = ()
    holiday_country: str = "JP"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("internal_domains")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip().lower() for v in value)


class QualityConfig(_Strict):
    mostly: float = Field(ge=0.0, le=1.0)
    future_tolerance_days: int = Field(ge=0)
    earliest_day: date
    user_id_pattern: str = Field(min_length=2)
    roster_min_share: float = Field(ge=0.0, le=1.0)

    @field_validator("user_id_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression ({exc})") from exc
        if not (value.startswith("^") and value.endswith("$")):
            raise ValueError("must match the whole id: start with ^ and end with $")
        return value


class LimitsConfig(_Strict):
    max_file_bytes: int = Field(ge=1 << 10)
    max_gzip_ratio: int = Field(ge=2)
    max_line_bytes: int = Field(ge=1 << 10)


class ReportConfig(_Strict):
    language: Literal["en", "ja"]
    supervisor_scope: Literal["direct", "chain"]
    security_team: tuple[str, ...] = ()
    sparkline_days: int = Field(ge=7, le=120)
    trend_days: int = Field(ge=7, le=366)
    evidence_rows: int = Field(ge=1, le=50)


class SmtpConfig(_Strict):
    enabled: bool
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"]
    sender: str = Field(min_length=3)
    username: str = ""
    password_env: str = Field(min_length=1)
    subject_prefix: str = ""
    timeout_seconds: float = Field(gt=0)
    send_nothing_today: bool = True


class InboundConfig(_Strict):
    known_sender_days: int = Field(ge=0, le=730)
    example_limit: int = Field(ge=0, le=100)
    headhunting: tuple[str, ...] = ()
    expert_network: tuple[str, ...] = ()
    information_seeking: tuple[str, ...] = ()


class Config(_Strict):
    site: SiteConfig
    quality: QualityConfig
    limits: LimitsConfig
    lists: ListsConfig
    report: ReportConfig
    smtp: SmtpConfig
    inbound: InboundConfig

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.site.timezone)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def load_config(site_file: Path | None = None) -> Config:
    """Defaults merged with ``site_file``; errors name the file and the dotted key."""
    data = _read_toml(DEFAULTS_PATH)
    origin = DEFAULTS_PATH
    if site_file is not None:
        data = _merge(data, _read_toml(site_file))
        origin = site_file
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{origin}: {problems}") from exc


def config_for_logs(logs: Path, site_file: Path | None = None) -> Config:
    """The explicit site file, else ``insiderwatch.toml`` in the landing folder, else defaults."""
    if site_file is None and (logs / SITE_FILE_NAME).is_file():
        site_file = logs / SITE_FILE_NAME
    return load_config(site_file)
