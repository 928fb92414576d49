"""Typed settings for baselines, the model and scoring, and the one loader for the analysts'
``tuning.toml`` (which also carries rule parameters, checked by the registry)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from detectors.base import (
    PIPELINE_PATH,
    TUNING_PATH,
    Detector,
    TuningError,
    load_detectors,
    read_toml,
)
from schemas.lists import ListsConfig


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class BaselineSettings(_Settings):
    window_days: int = Field(ge=7)
    min_history_days: int = Field(ge=1)
    min_peer_size: int = Field(ge=1)


class ModelSettings(_Settings):
    n_estimators: int = Field(ge=10)
    max_samples: int = Field(ge=16)
    seed: int
    train_days: int = Field(ge=7)
    retrain_every_days: int = Field(ge=1, le=28)
    min_train_rows: int = Field(ge=50)
    quantile: float = Field(gt=0.5, lt=1.0)
    max_points: float = Field(ge=0, le=100)
    drivers: int = Field(ge=1, le=10)


class ScoringSettings(_Settings):
    points: dict[str, float]
    extra_finding_points: float = Field(ge=0)
    max_extra_findings: int = Field(ge=0)
    boosters: dict[str, float]
    alert_threshold: float = Field(gt=0, le=100)
    severity_thresholds: dict[str, float]
    budget_share: float = Field(gt=0, le=1)
    budget_min: int = Field(ge=0)


# A site config: any model with a ``lists`` field (``insiderwatch.config.Config``).
SiteLike = TypeVar("SiteLike", bound=BaseModel)

SECTIONS = {"baseline": BaselineSettings, "model": ModelSettings, "scoring": ScoringSettings}
BOOSTERS = ("leaver", "priority", "top_secret", "multi_channel", "collect_exfiltrate")


@dataclass(frozen=True)
class Tuning:
    baseline: BaselineSettings
    model: ModelSettings
    scoring: ScoringSettings
    detectors: tuple[Detector, ...]
    source: str
    # Reference lists that replace the site config's (``[lists]`` in tuning.toml).
    lists: Mapping[str, Any] = field(default_factory=dict)

    def site(self, config: SiteLike) -> SiteLike:
        """The site config with the analysts' lists in place of the site's."""
        if not self.lists:
            return config
        merged = config.lists.model_dump() | dict(self.lists)
        return config.model_copy(update={"lists": ListsConfig.model_validate(merged)})

    def detector(self, detector_id: str) -> Detector:
        return next(d for d in self.detectors if d.id == detector_id)


def merge_tables(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` on top, tables merged key by key."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge_tables(out[key], value)
        else:
            out[key] = value
    return out


def load_tuning(
    path: Path | None = TUNING_PATH, overrides: Mapping[str, Any] | None = None
) -> Tuning:
    """Defaults, then the tuning file, then ``overrides`` (same shape, for notebooks/tests)."""
    defaults = read_toml(PIPELINE_PATH)
    chosen = read_toml(path) if path is not None and path.exists() else {}
    chosen = merge_tables(chosen, overrides or {})
    origin = str(path) if path is not None else "overrides"
    unknown = sorted(set(chosen) - set(SECTIONS) - {"rules", "lists"})
    if unknown:
        raise TuningError(f"{origin}: unknown section(s): {', '.join(unknown)}")
    built: dict[str, Any] = {}
    for section, model in SECTIONS.items():
        values = {key: spec["value"] for key, spec in defaults[section].items()}
        given = chosen.get(section, {})
        extra = sorted(set(given) - set(values))
        if extra:
            raise TuningError(
                f"{origin}: unknown setting(s): {', '.join(f'{section}.{k}' for k in extra)}"
            )
        for key, value in given.items():
            values[key] = merge_tables(values[key], value) if isinstance(value, Mapping) else value
        try:
            built[section] = model.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{section}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise TuningError(f"{origin}: {problems}") from exc
    scoring: ScoringSettings = built["scoring"]
    unknown_boosters = sorted(set(scoring.boosters) - set(BOOSTERS))
    if unknown_boosters:
        raise TuningError(f"{origin}: unknown booster(s): scoring.boosters.{unknown_boosters[0]}")
    try:
        detectors = load_detectors(chosen.get("rules", {}))
    except TuningError as exc:
        raise TuningError(f"{origin}: {exc}") from exc
    lists = _check_lists(chosen.get("lists", {}), origin)
    return Tuning(built["baseline"], built["model"], scoring, tuple(detectors), origin, lists)


def _check_lists(lists: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """``[lists]`` replaces the site config's reference lists of the same name (keywords,
    code names, domains…); checked against the site config's own types."""
    extra = sorted(set(lists) - set(ListsConfig.model_fields))
    if extra:
        raise TuningError(f"{origin}: unknown list(s): {', '.join('lists.' + k for k in extra)}")
    try:
        ListsConfig.model_validate(dict(lists))
    except ValidationError as exc:
        problems = "; ".join(
            f"lists.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise TuningError(f"{origin}: {problems}") from exc
    return dict(lists)
