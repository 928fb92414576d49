"""The CERT insider-threat test data (releases r4.2, r5.2, r6.2) mapped onto the canonical sources.

Written from the published layout in each release's readme; the data itself may not be
redistributed, so the tests generate files in this layout. One entry per CERT file: the header
variants it comes in, the canonical source it feeds, and how its values translate. The adapter
(``insiderwatch.adapters.cert``) applies these mappings; nothing else names a CERT column.

Quirks the adapter relies on:

* ids are GUIDs in curly braces, unique only within one file, so they are not kept;
* timestamps are ``MM/DD/YYYY HH:MM:SS`` in local time with no offset (the site time zone);
* a logon may have no logoff (the readme: "a small number of daily logons are intentionally not
  recorded"; a drive may be pulled from a powered-down machine, so a connect may have no
  disconnect);
* recipients are ``;``-separated; ``content`` is a quoted, comma-bearing bag of keywords;
* r4 ``file.csv`` lists only copies to removable media; r6 adds an activity and the
  removable-media flags; r6 ``email.csv`` adds Send / View and attachment paths with sizes,
  ``C:\\dir\\name.doc(12345)``;
* the roster comes from monthly LDAP snapshots, ``LDAP/YYYY-MM.csv``; the supervisor column
  holds a name, not an id.
"""

from __future__ import annotations

from dataclasses import dataclass

TIMESTAMP_FORMAT = "%m/%d/%Y %H:%M:%S"
WORK_DOMAIN_HINT = "dtaa.com"  # the fictional company's domain in every release


@dataclass(frozen=True)
class CertFile:
    name: str  # file name in the release folder
    source: str  # canonical source it feeds
    layouts: tuple[tuple[str, ...], ...]  # accepted headers, oldest release first
    activity: dict[str, str]  # CERT activity -> canonical value ({} when the file has none)


LOGON = CertFile(
    "logon.csv",
    "logon",
    (("id", "date", "user", "pc", "activity"),),
    {"Logon": "logon", "Logoff": "logoff"},
)
DEVICE = CertFile(
    "device.csv",
    "device",
    (
        ("id", "date", "user", "pc", "activity"),
        ("id", "date", "user", "pc", "file_tree", "activity"),
    ),
    {"Connect": "connect", "Disconnect": "disconnect"},
)
FILE = CertFile(
    "file.csv",
    "file_access",
    (
        ("id", "date", "user", "pc", "filename", "content"),
        (
            "id",
            "date",
            "user",
            "pc",
            "filename",
            "activity",
            "to_removable_media",
            "from_removable_media",
            "content",
        ),
    ),
    {"File Open": "open", "File Write": "write", "File Copy": "copy", "File Delete": "delete"},
)
EMAIL = CertFile(
    "email.csv",
    "mail",
    (
        ("id", "date", "user", "pc", "to", "cc", "bcc", "from", "size", "attachments", "content"),
        (
            "id",
            "date",
            "user",
            "pc",
            "to",
            "cc",
            "bcc",
            "from",
            "activity",
            "size",
            "attachments",
            "content",
        ),
    ),
    {"Send": "outbound", "View": "inbound"},
)
HTTP = CertFile(
    "http.csv",
    "web",
    (
        ("id", "date", "user", "pc", "url", "content"),
        ("id", "date", "user", "pc", "url", "activity", "content"),
    ),
    {"WWW Visit": "visit", "WWW Download": "download", "WWW Upload": "upload"},
)
EVENT_FILES: tuple[CertFile, ...] = (LOGON, DEVICE, FILE, EMAIL, HTTP)

# Each device in the data set is a thumb drive.
DEVICE_CLASS = "usb_storage"
# r4's file.csv lists only copies to removable media.
R4_FILE_ACTION = ("copy", "removable")

# Monthly LDAP snapshot: LDAP/YYYY-MM.csv. r6 adds "projects".
LDAP_FOLDER = "LDAP"
LDAP_REQUIRED = (
    "employee_name",
    "user_id",
    "email",
    "role",
    "business_unit",
    "functional_unit",
    "department",
    "team",
    "supervisor",
)
LDAP_OPTIONAL = ("projects",)
# The roster's department: the first non-empty org column, most specific first but one: the
# team is too small to be a peer group.
DEPARTMENT_COLUMNS = ("department", "functional_unit", "business_unit")
IGNORED_FILES = ("psychometric.csv",)

# Answer key (answers/insiders.csv), one row per insider, plus one event file per insider at
# answers/r<dataset>-<scenario>/<details>: each line a CERT record prefixed with its file type.
ANSWER_COLUMNS = ("dataset", "scenario", "details", "user", "start", "end")
ANSWER_EVENT_TYPES = ("logon", "device", "file", "email", "http")
