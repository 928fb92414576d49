"""The reference lists detection reads (METI: internal and free-mail domains, cloud and
transfer sites, job sites, expert networks, competitors, technical keywords, code names, and
the folder names that mark a confidentiality level). Their values live in the site config
(``insiderwatch/defaults.toml`` and a site file) and may be replaced by the analysts'
``detectors/tuning.toml`` ``[lists]``; both are checked against this one model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.canonical import CLASSIFICATIONS


class ListsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    free_mail_domains: tuple[str, ...] = ()
    sanctioned_cloud: tuple[str, ...] = ()
    personal_cloud: tuple[str, ...] = ()
    file_transfer: tuple[str, ...] = ()
    job_sites: tuple[str, ...] = ()
    expert_networks: tuple[str, ...] = ()
    leak_sites: tuple[str, ...] = ()
    paste_sites: tuple[str, ...] = ()
    anonymous_upload: tuple[str, ...] = ()
    competitor_domains: tuple[str, ...] = ()
    technical_keywords: tuple[str, ...] = ()
    code_names: tuple[str, ...] = ()
    path_classification: dict[str, str] = Field(default_factory=dict)

    @field_validator("path_classification")
    @classmethod
    def _known_levels(cls, value: dict[str, str]) -> dict[str, str]:
        for folder, level in value.items():
            if level not in CLASSIFICATIONS:
                raise ValueError(f"{folder!r}: level must be one of {', '.join(CLASSIFICATIONS)}")
        return value

    @field_validator(
        "free_mail_domains",
        "sanctioned_cloud",
        "personal_cloud",
        "file_transfer",
        "job_sites",
        "expert_networks",
        "leak_sites",
        "paste_sites",
        "anonymous_upload",
        "competitor_domains",
    )
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip().lower() for v in value)
