"""Microsoft 365 exports mapped onto the canonical sources.

Two exports are read (``insiderwatch.adapters.m365`` applies these tables):

* the unified audit log: the Purview audit search CSV export (``AuditData`` holds the record as
  JSON beside ``CreationDate``, ``Operation``/``Operations``, ``UserId``/``UserIds``), or JSON:
  an array or one object per line, either AuditData records themselves or objects carrying an
  ``AuditData`` string (``Search-UnifiedAuditLog | ConvertTo-Json``);
* the Exchange message trace CSV: ``Get-MessageTrace | Export-Csv`` (one row per recipient:
  Received, SenderAddress, RecipientAddress, Subject, Size, MessageId, …) or the downloaded
  trace report (origin_timestamp_utc, sender_address, recipient_status, message_subject,
  total_bytes, message_id, directionality, …).

Audit times are UTC. A user is their UPN, tied to the roster through its work address. The
landing folder also needs the canonical roster, ``hr/employees.csv``: M365 has no HR data.
"""

from __future__ import annotations

# Operation -> (canonical action, destination). Destination None: the file did not move.
FILE_OPERATIONS: dict[str, tuple[str, str | None]] = {
    "FileAccessed": ("read", None),
    "FileAccessedExtended": ("read", None),
    "FilePreviewed": ("read", None),
    "FileDownloaded": ("download", "local"),
    "FileSyncDownloadedFull": ("download", "local"),
    "FileSyncDownloadedPartial": ("download", "local"),
    # Into the company's own SharePoint / OneDrive: data written to a company share.
    "FileUploaded": ("write", "share"),
    "FileSyncUploadedFull": ("write", "share"),
    "FileSyncUploadedPartial": ("write", "share"),
    "FileModified": ("write", "share"),
    "FileModifiedExtended": ("write", "share"),
    "FileCopied": ("copy", "share"),
    "FileMoved": ("move", "share"),
    "FileRenamed": ("rename", "share"),
    "FileDeleted": ("delete", "share"),
    "FileDeletedFirstStageRecycleBin": ("delete", "share"),
    "FileDeletedSecondStageRecycleBin": ("delete", "share"),
    "FileRecycled": ("delete", "share"),
}
# Sharing: action "share"; to anyone outside (anonymous link, guest, external address) the
# destination is "cloud", inside the company "share".
SHARING_OPERATIONS: tuple[str, ...] = (
    "SharingSet",
    "SharingInvitationCreated",
    "AnonymousLinkCreated",
    "AnonymousLinkUpdated",
    "CompanyLinkCreated",
    "SecureLinkCreated",
    "AddedToSecureLink",
    "SharingLinkCreated",
)
ALWAYS_EXTERNAL = ("AnonymousLinkCreated", "AnonymousLinkUpdated")
EXTERNAL_TARGET_TYPES = ("Guest", "External", "Anonymous")
LOGON_OPERATIONS: dict[str, str] = {"UserLoggedIn": "logon", "UserLoggedOut": "logoff"}

# The AuditData fields read, by JSON path.
AUDIT_FIELDS: dict[str, str] = {
    "creation_time": "$.CreationTime",
    "operation": "$.Operation",
    "user_id": "$.UserId",
    "client_ip": "$.ClientIP",
    "workload": "$.Workload",
    "object_id": "$.ObjectId",
    "site_url": "$.SiteUrl",
    "relative_url": "$.SourceRelativeUrl",
    "file_name": "$.SourceFileName",
    "file_size": "$.FileSizeBytes",
    "target": "$.TargetUserOrGroupName",
    "target_type": "$.TargetUserOrGroupType",
}
AUDIT_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S")
# Header columns that mark an audit CSV export (either generation of the export).
AUDIT_CSV_MARKERS = ("AuditData",)

# Message trace layouts: canonical role -> column, per export.
TRACE_LAYOUTS: dict[str, dict[str, str]] = {
    "get-messagetrace": {
        "timestamp": "Received",
        "sender": "SenderAddress",
        "recipient": "RecipientAddress",
        "subject": "Subject",
        "size": "Size",
        "message_id": "MessageId",
    },
    "trace-report": {
        "timestamp": "origin_timestamp_utc",
        "sender": "sender_address",
        "recipient": "recipient_status",
        "subject": "message_subject",
        "size": "total_bytes",
        "message_id": "message_id",
        "direction": "directionality",
    },
}
TRACE_TIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
)
TRACE_DIRECTIONS = {"Originating": "outbound", "Incoming": "inbound"}
