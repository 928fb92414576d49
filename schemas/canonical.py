"""The canonical input contract: one definition per log source.

Everything that needs to know a column (ingest, the event store, the Great Expectations suites,
the docs in ``schemas/README.md``) reads it from here; nothing else redefines a column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["str", "int", "bool", "timestamp", "date", "enum", "list", "classification"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    required: bool
    description: str
    nullable: bool = True
    allowed: tuple[str, ...] = ()
    minimum: int | None = None
    max_chars: int | None = None
    # The largest plausible value: above it the row is a broken feed's, and quarantined; it
    # also keeps a day's sums far from the 64-bit limit (they would wrap round past it).
    maximum: int | None = None


@dataclass(frozen=True)
class Source:
    name: str
    description: str
    columns: tuple[Column, ...]
    # The column that ties an event to a person; mail is tied through addresses instead.
    user_column: str | None = "user"
    dedup: bool = True

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


CLASSIFICATIONS = ("top_secret", "secret", "internal", "public")

# Labels seen on real documents, folded to the canonical level (METI item 11's three tiers plus
# public). Matching is done after stripping and lower-casing.
CLASSIFICATION_ALIASES: dict[str, str] = {
    "top_secret": "top_secret",
    "top secret": "top_secret",
    "topsecret": "top_secret",
    "極秘": "top_secret",
    "secret": "secret",
    "confidential": "secret",
    "秘": "secret",
    "マル秘": "secret",
    "㊙": "secret",
    "internal": "internal",
    "internal use only": "internal",
    "社外秘": "internal",
    "public": "public",
    "公開": "public",
}

MAX_FIELD_CHARS = 65_536
# One event moving more than a tebibyte (a file, a spool, a mail, an upload) is no real event.
MAX_EVENT_BYTES = 1 << 40

_TS = Column(
    "timestamp", "timestamp", True, "ISO-8601; no offset means the site time zone", nullable=False
)
_USER = Column("user", "str", True, "roster user id", nullable=False, max_chars=64)
_HOST = Column("host", "str", True, "workstation or server name", max_chars=255)

HR = Source(
    name="hr",
    description="HR roster (hr/employees.csv), one row per person",
    user_column="user",
    dedup=False,
    columns=(
        _USER,
        Column(
            "name", "str", True, "display name (Japanese or Latin)", nullable=False, max_chars=255
        ),
        Column("email", "str", True, "work mail address", nullable=False, max_chars=320),
        Column("department", "str", True, "department name", nullable=False, max_chars=255),
        Column(
            "role",
            "str",
            True,
            "job role (peer group with department)",
            nullable=False,
            max_chars=255,
        ),
        Column(
            "supervisor",
            "str",
            True,
            "user id of the line supervisor; empty at the top",
            max_chars=64,
        ),
        Column("hire_date", "date", True, "YYYY-MM-DD", nullable=False),
        Column("notice_date", "date", False, "day the resignation was given; empty if none"),
        Column("last_day", "date", False, "last working day; empty if none"),
        Column(
            "last_day_source",
            "enum",
            False,
            "where last_day comes from: hr (recorded by HR; the default when last_day is given)"
            " or inferred (worked out, as from a disappearance from an LDAP export); an inferred"
            " day never raises activity after the last day",
            allowed=("hr", "inferred"),
        ),
        Column(
            "priority",
            "bool",
            False,
            "on the short list of people who know a whole process (METI item 13)",
        ),
        Column("personal_emails", "list", False, "known private addresses, ';'-separated"),
    ),
)

LOGON = Source(
    name="logon",
    description="Logons and logoffs",
    columns=(
        _TS,
        _USER,
        _HOST,
        Column(
            "activity", "enum", True, "logon or logoff", nullable=False, allowed=("logon", "logoff")
        ),
        Column("remote", "bool", False, "true when over VPN or remote desktop from outside"),
    ),
)

FILE_ACCESS = Source(
    name="file_access",
    description="File operations on endpoints, shares and cloud storage",
    columns=(
        _TS,
        _USER,
        _HOST,
        Column(
            "action",
            "enum",
            True,
            "what was done to the file (share: a sharing link or invitation was made)",
            nullable=False,
            allowed=(
                "open",
                "read",
                "write",
                "copy",
                "move",
                "rename",
                "delete",
                "download",
                "upload",
                "share",
            ),
        ),
        Column("path", "str", True, "full path or URL of the file", nullable=False, max_chars=4096),
        Column("bytes", "int", False, "bytes moved", minimum=0, maximum=MAX_EVENT_BYTES),
        Column(
            "destination",
            "enum",
            False,
            "where the data went",
            allowed=("local", "share", "removable", "cloud", "email", "unknown"),
        ),
        Column(
            "system", "str", False, "business system or share the file belongs to", max_chars=255
        ),
        Column(
            "classification",
            "classification",
            False,
            "top_secret, secret, internal, public or 極秘 / 秘 / 社外秘 / 公開",
            allowed=CLASSIFICATIONS,
        ),
    ),
)

PRINT = Source(
    name="print",
    description="Print jobs",
    columns=(
        _TS,
        _USER,
        Column("printer", "str", True, "printer name", nullable=False, max_chars=255),
        Column("document", "str", True, "document name", max_chars=4096),
        Column("pages", "int", True, "pages per copy", nullable=False, minimum=0, maximum=100_000),
        Column("copies", "int", False, "number of copies", minimum=0, maximum=10_000),
        Column("bytes", "int", False, "spool size", minimum=0, maximum=MAX_EVENT_BYTES),
    ),
)

MAIL = Source(
    name="mail",
    description="Mail sent and received; tied to a person through the roster's addresses",
    user_column=None,
    columns=(
        _TS,
        Column(
            "direction",
            "enum",
            True,
            "outbound or inbound",
            nullable=False,
            allowed=("outbound", "inbound"),
        ),
        Column("sender", "str", True, "sender address", nullable=False, max_chars=320),
        Column("recipients", "list", True, "';'-separated addresses", nullable=False),
        Column("cc", "list", False, "';'-separated addresses"),
        Column("bcc", "list", False, "';'-separated addresses"),
        Column("subject", "str", False, "subject line", max_chars=4096),
        Column("attachments", "int", False, "number of attachments", minimum=0, maximum=10_000),
        Column("attachment_names", "list", False, "';'-separated file names"),
        Column(
            "attachment_bytes",
            "int",
            False,
            "total attachment size",
            minimum=0,
            maximum=MAX_EVENT_BYTES,
        ),
        Column("size_bytes", "int", False, "message size", minimum=0, maximum=MAX_EVENT_BYTES),
        Column(
            "body",
            "str",
            False,
            "body text; scanned, never copied into reports",
            max_chars=MAX_FIELD_CHARS,
        ),
    ),
)

WEB = Source(
    name="web",
    description="Web proxy log",
    columns=(
        _TS,
        _USER,
        _HOST,
        Column("url", "str", True, "requested URL", nullable=False, max_chars=8192),
        Column(
            "action",
            "enum",
            True,
            "visit, download or upload",
            nullable=False,
            allowed=("visit", "download", "upload"),
        ),
        Column(
            "bytes_out",
            "int",
            False,
            "bytes sent by the user",
            minimum=0,
            maximum=MAX_EVENT_BYTES,
        ),
    ),
)

DEVICE = Source(
    name="device",
    description="Removable devices connected and disconnected",
    columns=(
        _TS,
        _USER,
        _HOST,
        Column(
            "activity",
            "enum",
            True,
            "connect or disconnect",
            nullable=False,
            allowed=("connect", "disconnect"),
        ),
        Column("device_class", "str", False, "usb_storage, phone, optical, …", max_chars=255),
    ),
)

SOURCES: dict[str, Source] = {s.name: s for s in (HR, LOGON, FILE_ACCESS, PRINT, MAIL, WEB, DEVICE)}
EVENT_SOURCES: tuple[str, ...] = ("logon", "file_access", "print", "mail", "web", "device")

# Columns the store adds to every event row, after the canonical ones.
STORE_COLUMNS: dict[str, str] = {
    "timestamp": "stored as a UTC instant (microseconds)",
    "local_date": "calendar day in the site time zone",
    "source_file": "landing file the row came from, relative to the landing folder",
    "source_line": "line of the record in that file (1 = header line for CSV)",
}
# Mail rows also carry the people they are tied to.
MAIL_STORE_COLUMNS: dict[str, str] = {
    "user": "roster person the mail belongs to: the sender (outbound) or first recipient (inbound)",
    "recipient_users": "roster people among recipients, cc and bcc",
}
