"""Microsoft 365 exports -> staged canonical landing files (mappings: schemas.m365).

The landing folder holds ``hr/employees.csv`` (canonical; M365 has no HR data) and any number
of exports anywhere else in it: audit log CSV / JSON / JSON-lines files and message trace CSV
files, each recognised by its header or first record. Audit file operations and sharing become
``file_access`` rows, sign-ins ``logon`` rows; the message trace's per-recipient rows become
one ``mail`` row per message. Operations with no canonical meaning (Teams, mailbox access, …)
are counted per operation and reported, not staged.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl

from insiderwatch.adapters import Progress, Staged
from insiderwatch.adapters.staging import (
    StagingWriter,
    rejects_frame,
    staged_rows,
    utc_iso,
)
from insiderwatch.config import Config, LimitsConfig
from insiderwatch.readers import (
    LINE,
    FileError,
    RawBatch,
    Reject,
    decode_text,
    inside_landing,
    iter_csv_blocks,
    load_bytes,
)
from schemas import m365 as spec

_TEXT = (".csv", ".csv.gz", ".json", ".jsonl")


def _kind(path: Path) -> str | None:
    """'audit-csv', 'audit-json', 'trace:<layout>' or None, from the file's first bytes."""
    name = path.name
    if not name.endswith(_TEXT) or name.startswith("."):
        return None
    head = _head(path)
    if name.endswith((".json", ".jsonl")):
        stripped = head.lstrip("\ufeff \r\n\t[")
        if stripped.startswith("{") and ('"Operation' in head or '"AuditData"' in head):
            return "audit-json"
        return None
    first = head.lstrip("\ufeff").split("\n", 1)[0]
    if first.startswith("#TYPE"):  # Windows PowerShell's Export-Csv type line
        first = head.split("\n", 2)[1] if head.count("\n") >= 1 else ""
    columns = {c.strip().strip('"') for c in first.split(",")}
    if set(spec.AUDIT_CSV_MARKERS) <= columns:
        return "audit-csv"
    for layout, roles in spec.TRACE_LAYOUTS.items():
        if {roles["timestamp"], roles["sender"], roles["recipient"]} <= columns:
            return f"trace:{layout}"
    return None


def _head(path: Path, size: int = 4096) -> str:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            return fh.read(size).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _exports(folder: Path) -> list[tuple[Path, str]]:
    found = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.relative_to(folder).parts[0] == "hr":
            continue
        kind = _kind(path)
        if kind is not None:
            found.append((path, kind))
    return found


def looks_like(folder: Path) -> bool:
    return bool(_exports(folder))


def stage_m365(
    logs: Path,
    workdir: Path,
    config: Config,
    start: date | None,
    end: date | None,
    progress: Progress | None = None,
) -> Staged:
    staged = Staged("m365", workdir)
    roster_file = logs / "hr" / "employees.csv"
    if not roster_file.is_file():
        raise FileError(
            "hr/employees.csv", None, "Microsoft 365 has no HR data: add the canonical roster"
        )
    roster_file = inside_landing(roster_file, logs, "hr/employees.csv")
    (workdir / "hr").mkdir(parents=True)
    (workdir / "hr" / "employees.csv").write_bytes(roster_file.read_bytes())
    upns = _upns(roster_file)
    internal = tuple(config.site.internal_domains)
    tz = config.site.timezone
    skipped: Counter[str] = Counter()
    for number, (path, kind) in enumerate(_exports(logs), start=1):
        rel = path.relative_to(logs).as_posix()
        path = inside_landing(path, logs, rel)
        stem = f"m365-{number:03d}"
        read = 0
        if kind.startswith("trace:"):
            layout = spec.TRACE_LAYOUTS[kind.split(":", 1)[1]]
            writer = StagingWriter(workdir, "mail", stem)
            # A message's rows must meet in one block: read the trace whole (exports are
            # capped far below memory).
            for batch in iter_csv_blocks(path, rel, None, config.limits):
                read += batch.rows_read
                rows = _trace_rows(batch, layout, internal, tz, rel)
                staged.folded += batch.rows_read - rows.height
                staged.outside_window += writer.write(rows, start, end)
            staged.staged += writer.rows
        else:
            writers = {s: StagingWriter(workdir, s, stem) for s in ("file_access", "logon")}
            reader = _audit_csv if kind == "audit-csv" else _audit_json
            batches = reader(path, rel, config.limits)
            for batch in batches:
                read += batch.rows_read
                for source, rows in _audit_rows(batch, upns, internal, tz, rel, skipped):
                    staged.outside_window += writers[source].write(rows, start, end)
            staged.staged += sum(w.rows for w in writers.values())
        staged.vendor_rows[rel] = read
        if progress:
            progress(f"{rel}: {read:,} records")
    if skipped:
        listed = ", ".join(f"{op} {n:,}" for op, n in sorted(skipped.items()))
        staged.warnings.append(
            f"{sum(skipped.values()):,} audit records of operations with no canonical "
            f"meaning were not staged: {listed}"
        )
    staged.skipped = dict(skipped)
    return staged


def _upns(roster_file: Path) -> pl.DataFrame:
    roster = pl.read_csv(roster_file, infer_schema=False, columns=["user", "email"])
    return roster.select(
        upn=pl.col("email").str.strip_chars().str.to_lowercase(), roster_user="user"
    ).unique("upn", keep="first")


# --- audit log --------------------------------------------------------------------------------


def _audit_csv(path: Path, rel: str, limits: LimitsConfig) -> Iterator[RawBatch]:
    for batch in iter_csv_blocks(path, rel, limits=limits):
        batch.frame = batch.frame.select("AuditData", LINE)
        yield batch


def _audit_json(path: Path, rel: str, limits: LimitsConfig) -> Iterator[RawBatch]:
    """JSON array or JSON lines -> batches of (AuditData text, line of the record's start)."""
    data = load_bytes(path, rel, limits)
    decoded = decode_text(data)
    text = decoded.text if decoded.text is not None else "\n".join(decoded.lines or [])
    records: list[str] = []
    lines: list[int] = []
    rejects: list[Reject] = []
    decoder = json.JSONDecoder()
    pos, line = 0, 1
    array = text.lstrip().startswith("[")
    if array:
        start = text.index("[")
        line += text.count("\n", 0, start + 1)
        pos = start + 1
    while True:
        # Skip whitespace and the commas between array items.
        end = pos
        while end < len(text) and text[end] in " \t\r\n,\ufeff":
            end += 1
        line += text.count("\n", pos, end)
        pos = end
        if pos >= len(text) or (array and text[pos] == "]"):
            break
        try:
            obj, after = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            if array:
                raise FileError(rel, line, f"malformed JSON ({exc.msg})") from exc
            stop = text.find("\n", pos)
            stop = len(text) if stop < 0 else stop
            rejects.append(Reject(line, text[pos:stop], f"malformed JSON ({exc.msg})"))
            line += text.count("\n", pos, stop)
            pos = stop
            continue
        record = obj.get("AuditData", obj) if isinstance(obj, dict) else None
        if isinstance(record, str):
            records.append(record)
        elif isinstance(record, dict):
            records.append(json.dumps(record, ensure_ascii=False))
        else:
            rejects.append(Reject(line, text[pos:after][:500], "a record must be a JSON object"))
        if isinstance(record, (str, dict)):
            lines.append(line)
        line += text.count("\n", pos, after)
        pos = after
    frame = pl.DataFrame(
        {"AuditData": pl.Series(records, dtype=pl.String), LINE: pl.Series(lines, dtype=pl.Int64)}
    )
    yield RawBatch(rel, frame, rejects, encoding=decoded.encoding)


def _audit_rows(
    batch: RawBatch,
    upns: pl.DataFrame,
    internal: tuple[str, ...],
    tz: str,
    rel: str,
    skipped: Counter[str],
) -> Iterator[tuple[str, pl.DataFrame]]:
    fields = batch.frame.select(
        LINE,
        "AuditData",
        *[
            pl.col("AuditData").str.json_path_match(path).alias(name)
            for name, path in spec.AUDIT_FIELDS.items()
        ],
    ).with_columns(
        pl.col("user_id").str.strip_chars().str.to_lowercase().alias("upn"),
    )
    fields = fields.join(upns, on="upn", how="left", maintain_order="left").with_columns(
        # A UPN that is not a roster address stays as it is: the ingest quarantines it.
        user=pl.coalesce("roster_user", "user_id")
    )
    timestamp, instant = utc_iso(pl.col("creation_time"), spec.AUDIT_TIME_FORMATS)
    day = instant.dt.convert_time_zone(tz).dt.date()
    operation = pl.col("operation")
    broken = fields.filter(operation.is_null())
    file_ops = list(spec.FILE_OPERATIONS)
    sharing = list(spec.SHARING_OPERATIONS)
    logon_ops = list(spec.LOGON_OPERATIONS)
    known = file_ops + sharing + logon_ops
    for op, n in (
        fields.filter(operation.is_not_null() & ~operation.is_in(known))
        .group_by("operation")
        .len()
        .iter_rows()
    ):
        skipped[op] += n

    files = fields.filter(operation.is_in(file_ops + sharing))
    target = pl.col("target").str.to_lowercase()
    target_domain = target.str.extract(r"@([^@#]+)$")
    external = (
        operation.is_in(list(spec.ALWAYS_EXTERNAL))
        | pl.col("target_type").is_in(list(spec.EXTERNAL_TARGET_TYPES))
        | target.str.contains("#ext#", literal=True)
        | (target_domain.is_not_null() & ~target_domain.is_in(list(internal)))
    ).fill_null(False)
    action = (
        pl.when(operation.is_in(sharing))
        .then(pl.lit("share"))
        .otherwise(
            operation.replace_strict(
                {k: v[0] for k, v in spec.FILE_OPERATIONS.items()}, default=None
            )
        )
    )
    destination = (
        pl.when(operation.is_in(sharing))
        .then(pl.when(external).then(pl.lit("cloud")).otherwise(pl.lit("share")))
        .otherwise(
            operation.replace_strict(
                {k: v[1] for k, v in spec.FILE_OPERATIONS.items()}, default=None
            )
        )
    )
    path = pl.coalesce(
        pl.col("object_id"),
        pl.concat_str(
            [pl.col("site_url"), pl.col("relative_url"), pl.lit("/"), pl.col("file_name")]
        ),
    )
    mapped = {
        "timestamp": timestamp,
        "user": pl.col("user"),
        "host": pl.col("client_ip"),
        "action": action,
        "path": path,
        "bytes": pl.col("file_size"),
        "destination": destination,
        "system": pl.coalesce("site_url", "workload"),
    }
    out = files.select(staged_rows(mapped, day, "file_access", rel))
    rejected = rejects_frame(batch, "file_access", rel)
    if broken.height:
        rejected = pl.concat(
            [
                rejected,
                broken.select(
                    staged_rows(
                        {},
                        pl.lit(None, pl.Date),
                        "file_access",
                        rel,
                        reject=pl.lit("AuditData is not a JSON record with an Operation"),
                        reject_raw=pl.col("AuditData"),
                    )
                ),
            ]
        )
    yield "file_access", pl.concat([out, rejected])

    logons = fields.filter(operation.is_in(logon_ops))
    if logons.height:
        mapped = {
            "timestamp": timestamp,
            "user": pl.col("user"),
            "host": pl.col("client_ip"),
            "activity": operation.replace_strict(spec.LOGON_OPERATIONS, default=None),
            "remote": pl.lit(None, pl.String),
        }
        yield "logon", logons.select(staged_rows(mapped, day, "logon", rel))


# --- message trace ----------------------------------------------------------------------------


def _trace_rows(
    batch: RawBatch, layout: dict[str, str], internal: tuple[str, ...], tz: str, rel: str
) -> pl.DataFrame:
    frame = batch.frame
    missing = [c for c in layout.values() if c not in frame.columns]
    if missing:
        raise FileError(rel, 1, "message trace without column(s): " + ", ".join(missing))
    recipient = pl.col(layout["recipient"])
    # The trace report packs "address##status" items separated by ';'.
    addresses = (
        recipient.str.split(";")
        .list.eval(pl.element().str.split("##").list.first().str.strip_chars())
        .list.eval(pl.element().filter(pl.element() != ""))
    )
    grouped = (
        frame.with_columns(_addresses=addresses)
        .group_by(layout["message_id"], layout["sender"], maintain_order=True)
        .agg(
            pl.col(LINE).first(),
            pl.col(layout["timestamp"]).first().alias("_time"),
            pl.col(layout["subject"]).first().alias("_subject"),
            pl.col(layout["size"]).first().alias("_size"),
            pl.col("_addresses")
            .list.explode(keep_nulls=False, empty_as_null=False)
            .unique(maintain_order=True)
            .alias("_rcpt"),
            *(
                [pl.col(layout["direction"]).first().alias("_direction")]
                if "direction" in layout
                else []
            ),
        )
    )
    timestamp, instant = utc_iso(pl.col("_time"), spec.TRACE_TIME_FORMATS)
    day = instant.dt.convert_time_zone(tz).dt.date()
    sender = pl.col(layout["sender"])
    sender_domain = sender.str.to_lowercase().str.extract(r"@(.+)$")
    by_domain = (
        pl.when(sender_domain.is_in(list(internal)))
        .then(pl.lit("outbound"))
        .otherwise(pl.lit("inbound"))
    )
    direction = (
        pl.col("_direction").replace_strict(spec.TRACE_DIRECTIONS, default=None)
        if "direction" in layout
        else pl.lit(None, pl.String)
    )
    mapped = {
        "timestamp": timestamp,
        "direction": pl.coalesce(direction, by_domain),
        "sender": sender,
        "recipients": pl.col("_rcpt").list.join(";"),
        "subject": pl.col("_subject"),
        "size_bytes": pl.col("_size").str.replace_all(r"[^0-9]", ""),
    }
    rows = grouped.select(staged_rows(mapped, day, "mail", rel))
    return pl.concat([rows, rejects_frame(batch, "mail", rel)])
