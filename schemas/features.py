"""The user-day evidence vocabulary: one row per person per local day, computed once from the
event store and shared by the rule detectors and the isolation-forest model.

Next to each feature ``f`` the evidence frame carries its baselines, all from days before the
scored day only (see ``insiderwatch.features``):

* ``f__own`` — the person's usual day: the median over their active days in the baseline window
  (robust to a few earlier bad days; the peer mean for a newcomer with too little history;
  ``baseline`` says which),
* ``f__own_max`` — the person's highest day in the window,
* ``f__peer`` — the mean of the peer group (department and role) over the same window,
* ``f__own_z`` / ``f__peer_z`` — today's deviation from each, in standard deviations of
  ``log1p(f)``; these are what the model sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Unit = Literal["count", "bytes", "pages", "share"]


@dataclass(frozen=True)
class Feature:
    name: str
    unit: Unit
    channel: str
    description: str
    # Part of the model's input (as deviations from own and peer baselines).
    model: bool = True


FEATURES: tuple[Feature, ...] = (
    Feature("events", "count", "activity", "events of any kind by the person"),
    Feature("after_hours_events", "count", "time", "events outside working hours or on holidays"),
    Feature("after_hours_share", "share", "time", "share of the day's events after hours"),
    Feature("night_events", "count", "time", "events in the late-night window"),
    Feature("night_peak_hour", "count", "time", "most file events in one late-night clock hour"),
    Feature("files_read", "count", "files", "files opened or read"),
    Feature("files_read_bytes", "bytes", "files", "bytes of files opened or read"),
    Feature("files_downloaded", "count", "files", "files downloaded"),
    Feature("files_downloaded_bytes", "bytes", "files", "bytes downloaded"),
    Feature("files_copied", "count", "files", "files copied or moved (not to removable media)"),
    Feature("files_copied_bytes", "bytes", "files", "bytes copied or moved"),
    Feature("removable_files", "count", "removable", "files written to removable media"),
    Feature("removable_bytes", "bytes", "removable", "bytes written to removable media"),
    Feature("usb_connects", "count", "removable", "removable devices connected"),
    Feature("cloud_uploads", "count", "cloud", "files uploaded to cloud storage (endpoint log)"),
    Feature("cloud_upload_bytes", "bytes", "cloud", "bytes uploaded to cloud storage"),
    Feature(
        "personal_uploads", "count", "cloud", "web uploads to personal cloud or transfer sites"
    ),
    Feature("personal_upload_bytes", "bytes", "cloud", "bytes sent to personal cloud or transfer"),
    Feature("print_jobs", "count", "print", "print jobs"),
    Feature("printed_pages", "pages", "print", "pages printed (pages × copies)"),
    Feature("external_mails", "count", "mail", "outbound mails with an external recipient"),
    Feature("external_attachments", "count", "mail", "attachments sent to external recipients"),
    Feature("external_attachment_bytes", "bytes", "mail", "attachment bytes sent outside"),
    Feature(
        "personal_mails",
        "count",
        "mail",
        "outbound mails with attachments to the person's own private or a free-mail address",
    ),
    Feature("competitor_mails", "count", "mail", "outbound mails to a competitor's domain"),
    Feature(
        "technical_mails",
        "count",
        "mail",
        "outbound external mails naming a technical keyword or code name",
    ),
    Feature("job_site_visits", "count", "web", "visits to job sites"),
    Feature("expert_network_visits", "count", "web", "visits to spot-consulting platforms"),
    # Kept out of the model: a day with any such request is rare enough that the rule that
    # reads these says more than a deviation could.
    Feature(
        "leak_site_requests",
        "count",
        "web",
        "requests to leak, paste or anonymous-upload sites",
        model=False,
    ),
    Feature(
        "leak_site_uploads",
        "count",
        "web",
        "uploads to leak, paste or anonymous-upload sites",
        model=False,
    ),
    Feature("top_secret_events", "count", "access", "file events on 極秘 material"),
    Feature("secret_events", "count", "access", "file events on 秘 material"),
    Feature("remote_logons", "count", "logon", "logons from outside (VPN, remote desktop)"),
    Feature("new_systems", "count", "access", "systems used today and not in the baseline window"),
    Feature("new_shares", "count", "access", "file shares used today and not in the window"),
    Feature(
        "new_item_events", "count", "access", "file events on systems or shares new to the person"
    ),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
MODEL_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.model)
# Computed at detection time against the baseline window rather than stored per day.
WINDOW_FEATURES: tuple[str, ...] = ("new_systems", "new_shares", "new_item_events")
STORED_FEATURES: tuple[str, ...] = tuple(n for n in FEATURE_NAMES if n not in WINDOW_FEATURES)
UNITS: dict[str, Unit] = {f.name: f.unit for f in FEATURES}

# Bytes that left their usual place on a day (downloaded, copied, to removable media,
# uploaded, mailed outside): the "data moved" of the report sparklines and the timelines.
MOVED_BYTES: tuple[str, ...] = (
    "files_downloaded_bytes",
    "files_copied_bytes",
    "removable_bytes",
    "cloud_upload_bytes",
    "personal_upload_bytes",
    "external_attachment_bytes",
)
# Exfiltration channels, for the "several channels on one day" booster.
EXFIL_CHANNELS: tuple[str, ...] = ("removable", "cloud", "print", "mail")
# Collection channels, for the "collection and exfiltration on one day" booster.
COLLECTION_CHANNELS: tuple[str, ...] = ("files", "access")
