"""The CERT insider-threat test data -> staged canonical landing files (mappings: schemas.cert).

A release folder holds ``logon.csv``, ``device.csv``, ``file.csv``, ``email.csv``,
``http.csv`` (each may also be gzipped) and ``LDAP/YYYY-MM.csv``; ``psychometric.csv`` is
ignored. Event files are streamed in blocks (``http.csv`` is about 14 GB in r4.2).

The roster comes from the LDAP snapshots: a person's latest snapshot gives name, address, role,
department and supervisor (a name in CERT, resolved to an id within the same snapshot). Their
first snapshot month gives ``hire_date``. A month's snapshot lists the people still there
when it was taken, so a person last listed in month M left during month M+1: they get an
*inferred* ``last_day`` (``last_day_source`` = inferred), the day of their last activity in
M+1, or the end of M when they did nothing in M+1. Non-work addresses a person
sends from in ``email.csv`` become their ``personal_emails``, so mail they send from a private
account is tied to them.
"""

from __future__ import annotations

import csv
import re
from datetime import date, datetime
from pathlib import Path

import polars as pl

from insiderwatch.adapters import Progress, Staged
from insiderwatch.adapters.staging import (
    StagingWriter,
    iso_local,
    rejects_frame,
    staged_rows,
)
from insiderwatch.config import Config
from insiderwatch.readers import (
    LINE,
    FileError,
    inside_landing,
    iter_csv_blocks,
    read_landing_file,
)
from schemas import cert as spec

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def looks_like(folder: Path) -> bool:
    """A CERT release: an LDAP folder or one of the CERT event files at the top."""
    if (folder / spec.LDAP_FOLDER).is_dir():
        return True
    return any(_find(folder, f.name) for f in spec.EVENT_FILES)


def stage_cert(
    logs: Path,
    workdir: Path,
    config: Config,
    start: date | None,
    end: date | None,
    progress: Progress | None = None,
    block_bytes: int = 64 << 20,
) -> Staged:
    staged = Staged("cert", workdir)
    senders: list[pl.DataFrame] = []
    active: list[pl.DataFrame] = []
    for cert_file in spec.EVENT_FILES:
        path = _find(logs, cert_file.name)
        if path is None:
            continue
        rel = path.relative_to(logs).as_posix()
        path = inside_landing(path, logs, rel)
        writer = StagingWriter(workdir, cert_file.source, cert_file.name.removesuffix(".csv"))
        read = 0
        for batch in iter_csv_blocks(path, rel, block_bytes, config.limits):
            header = tuple(c for c in batch.frame.columns if c != LINE)
            layout = _layout(cert_file, header, rel)
            read += batch.rows_read
            mapped, day = _map(cert_file, layout)
            rows = batch.frame.select(staged_rows(mapped, day, cert_file.source, rel))
            rows = pl.concat([rows, rejects_frame(batch, cert_file.source, rel)])
            staged.outside_window += writer.write(rows, start, end)
            if cert_file is spec.EMAIL:
                senders.append(_private_senders(batch.frame, layout))
            active.append(_last_active(batch.frame, day))
            if progress:
                progress(f"{rel}: {read:,} records")
        staged.vendor_rows[rel] = read
        staged.staged += writer.rows
    roster = build_roster(logs, senders, active)
    (workdir / "hr").mkdir(parents=True, exist_ok=True)
    roster.write_csv(workdir / "hr" / "employees.csv")
    staged.warnings.extend(_domain_warnings(roster, config))
    return staged


def _layout(cert_file: spec.CertFile, header: tuple[str, ...], rel: str) -> tuple[str, ...]:
    for layout in cert_file.layouts:
        if header == layout:
            return layout
    known = " or ".join(",".join(layout) for layout in cert_file.layouts)
    raise FileError(
        rel, 1, f"not a CERT {cert_file.name} header: {','.join(header)} (expected {known})"
    )


def _activity(cert_file: spec.CertFile) -> pl.Expr:
    # Unknown values pass on unchanged, so the ingest quarantines them as unknown.
    return pl.col("activity").str.strip_chars().replace(cert_file.activity)


def _map(cert_file: spec.CertFile, layout: tuple[str, ...]) -> tuple[dict[str, pl.Expr], pl.Expr]:
    timestamp, day = iso_local(pl.col("date"), spec.TIMESTAMP_FORMAT)
    common = {"timestamp": timestamp, "user": pl.col("user"), "host": pl.col("pc")}
    has_activity = "activity" in layout
    if cert_file is spec.LOGON:
        return {**common, "activity": _activity(cert_file)}, day
    if cert_file is spec.DEVICE:
        return {
            **common,
            "activity": _activity(cert_file),
            "device_class": pl.lit(spec.DEVICE_CLASS),
        }, day
    if cert_file is spec.FILE:
        if has_activity:
            to_usb = pl.col("to_removable_media").str.strip_chars().str.to_lowercase() == "true"
            action = _activity(cert_file)
            destination = pl.when(to_usb).then(pl.lit("removable")).otherwise(pl.lit("local"))
        else:
            action, destination = (pl.lit(v) for v in spec.R4_FILE_ACTION)
        return {
            **common,
            "path": pl.col("filename"),
            "action": action,
            "destination": destination,
        }, day
    if cert_file is spec.HTTP:
        action = _activity(cert_file) if has_activity else pl.lit("visit")
        return {**common, "url": pl.col("url"), "action": action}, day
    # email
    direction = _activity(cert_file) if has_activity else pl.lit("outbound")
    mapped = {
        "timestamp": timestamp,
        "direction": direction,
        "sender": pl.col("from"),
        "recipients": pl.col("to"),
        "cc": pl.col("cc"),
        "bcc": pl.col("bcc"),
        "size_bytes": pl.col("size"),
        "body": pl.col("content"),
    }
    attachments = pl.col("attachments").str.strip_chars()
    is_count = attachments.str.contains(r"^\d+$") | attachments.is_null()
    # r6: "C:\dir\name.doc(12345);…" -> names and summed sizes; r4: a count.
    listed = (
        attachments.str.split(";")
        .list.eval(pl.element().str.strip_chars())
        .list.eval(pl.element().filter(pl.element() != ""))
    )
    names = listed.list.eval(pl.element().str.replace(r"\(\d+\)$", "").str.extract(r"([^\\/]+)$"))
    sizes = listed.list.eval(pl.element().str.extract(r"\((\d+)\)$").cast(pl.Int64)).list.sum()
    mapped["attachments"] = (
        pl.when(is_count).then(attachments).otherwise(listed.list.len().cast(pl.String))
    )
    mapped["attachment_names"] = pl.when(is_count).then(None).otherwise(names.list.join(";"))
    mapped["attachment_bytes"] = pl.when(is_count).then(None).otherwise(sizes.cast(pl.String))
    return mapped, day


def _private_senders(frame: pl.DataFrame, layout: tuple[str, ...]) -> pl.DataFrame:
    sent = frame
    if "activity" in layout:
        sent = frame.filter(pl.col("activity").str.strip_chars() == "Send")
    return (
        sent.select(
            user=pl.col("user").str.strip_chars(),
            address=pl.col("from").str.strip_chars().str.to_lowercase(),
        )
        .drop_nulls()
        .unique()
    )


# --- LDAP -> roster ------------------------------------------------------------------------


def _ldap_months(logs: Path) -> list[tuple[date, Path]]:
    folder = logs / spec.LDAP_FOLDER
    if not folder.is_dir():
        raise FileError(
            spec.LDAP_FOLDER, None, "no LDAP folder: the CERT roster comes from LDAP/YYYY-MM.csv"
        )
    months = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        stem = path.name.removesuffix(".gz").removesuffix(".csv")
        match = _MONTH.match(stem)
        if not match or not path.name.endswith((".csv", ".csv.gz")):
            raise FileError(
                path.relative_to(logs).as_posix(), None, "an LDAP file must be named YYYY-MM.csv"
            )
        rel = path.relative_to(logs).as_posix()
        months.append(
            (date(int(match.group(1)), int(match.group(2)), 1), inside_landing(path, logs, rel))
        )
    if not months:
        raise FileError(spec.LDAP_FOLDER, None, "the LDAP folder holds no YYYY-MM.csv snapshots")
    return months


def _read_snapshot(logs: Path, month: date, path: Path) -> pl.DataFrame:
    rel = f"{spec.LDAP_FOLDER}/{path.name}"
    batch = read_landing_file(
        path, rel, spec.LDAP_REQUIRED + spec.LDAP_OPTIONAL, spec.LDAP_REQUIRED
    )
    if batch.rejects:
        first = batch.rejects[0]
        raise FileError(rel, first.line, first.reason)
    stripped = [pl.col(c).str.strip_chars() for c in spec.LDAP_REQUIRED]
    frame = batch.frame.with_columns(pl.when(v != "").then(v) for v in stripped)
    missing = frame.filter(pl.col("user_id").is_null() | pl.col("employee_name").is_null())
    if missing.height:
        raise FileError(rel, missing[LINE][0], "missing user_id or employee_name")
    repeated = frame.filter(pl.col("user_id").is_duplicated()).sort(LINE)
    if repeated.height:
        raise FileError(rel, repeated[LINE][1], f"user_id {repeated['user_id'][0]!r} listed twice")
    # The supervisor is a name; resolve it to an id within the same snapshot.
    names = frame.group_by("employee_name").agg(
        supervisor_id=pl.col("user_id").first(), holders=pl.len()
    )
    unknown = (
        frame.filter(pl.col("supervisor").is_not_null())
        .join(names, left_on="supervisor", right_on="employee_name", how="left")
        .filter(pl.col("supervisor_id").is_null() | (pl.col("holders") > 1))
    )
    if unknown.height:
        row = unknown.sort(LINE).row(0, named=True)
        why = "is not listed" if row["holders"] is None else "is not unique"
        raise FileError(rel, row[LINE], f"supervisor {row['supervisor']!r} {why} in this snapshot")
    return frame.join(
        names.select("employee_name", "supervisor_id"),
        left_on="supervisor",
        right_on="employee_name",
        how="left",
        maintain_order="left",
    ).select(
        "user_id",
        "employee_name",
        "email",
        "role",
        pl.coalesce(spec.DEPARTMENT_COLUMNS).alias("department_name"),
        "supervisor_id",
        pl.lit(month).alias("month"),
    )


def _last_active(frame: pl.DataFrame, day: pl.Expr) -> pl.DataFrame:
    """Each person's last day with a record in one block of an event file (every CERT event
    file names the person in ``user``, e-mail included), whatever the run's window."""
    return (
        frame.select(user=pl.col("user").str.strip_chars(), day=day)
        .drop_nulls()
        .group_by("user")
        .agg(pl.col("day").max())
    )


def build_roster(
    logs: Path, senders: list[pl.DataFrame], active: list[pl.DataFrame] | None = None
) -> pl.DataFrame:
    """The canonical roster (as text) from the LDAP snapshots, the private senders and each
    person's last active day in the event files (``_last_active`` blocks)."""
    months = _ldap_months(logs)
    snapshots = pl.concat([_read_snapshot(logs, m, p) for m, p in months])
    last_month = months[-1][0]
    spans = snapshots.group_by("user_id").agg(
        first=pl.col("month").min(), last=pl.col("month").max()
    )
    latest = snapshots.sort("month").group_by("user_id").last()
    work = latest.select("user_id", work=pl.col("email").str.to_lowercase())
    private = (
        pl.concat(senders).unique()
        if senders
        else pl.DataFrame(schema={"user": pl.String, "address": pl.String})
    )
    private = (
        private.join(work, left_on="user", right_on="user_id", how="inner")
        .filter(pl.col("address") != pl.col("work"))
        .group_by("user")
        .agg(personal=pl.col("address").sort().str.join(";"))
    )
    last_active = (
        pl.concat(active).group_by("user").agg(pl.col("day").max())
        if active
        else pl.DataFrame(schema={"user": pl.String, "day": pl.Date})
    )
    roster = (
        latest.join(spans, on="user_id")
        .join(private, left_on="user_id", right_on="user", how="left")
        .join(last_active, left_on="user_id", right_on="user", how="left")
        .sort("user_id")
    )
    # Last listed in month M (before the last snapshot): gone during M+1, and still at work on
    # their last active day in M+1 (activity after M+1 is not taken as theirs to move it on).
    listed_until = pl.col("last").dt.month_end()
    next_month_end = pl.col("last").dt.offset_by("1mo").dt.month_end()
    in_next_month = pl.col("day").is_between(listed_until, next_month_end, closed="right")
    inferred = pl.when(in_next_month).then(pl.col("day")).otherwise(listed_until)
    left = pl.col("last") < last_month
    return roster.select(
        user="user_id",
        name="employee_name",
        email="email",
        department="department_name",
        role="role",
        supervisor="supervisor_id",
        hire_date=pl.col("first").dt.strftime("%Y-%m-%d"),
        notice_date=pl.lit(None, pl.String),
        last_day=pl.when(left).then(inferred.dt.strftime("%Y-%m-%d")),
        last_day_source=pl.when(left).then(pl.lit("inferred")),
        priority=pl.lit("false"),
        personal_emails=pl.col("personal"),
    )


def _domain_warnings(roster: pl.DataFrame, config: Config) -> list[str]:
    domains = set(roster["email"].str.to_lowercase().str.extract(r"@(.+)$").drop_nulls().to_list())
    missing = sorted(domains - set(config.site.internal_domains))
    if not missing:
        return []
    return [
        f"LDAP work addresses use {', '.join(missing)}, which site.internal_domains does not "
        "list: mail between colleagues will count as external (set it in insiderwatch.toml)"
    ]


# --- answer key -> labels -------------------------------------------------------------------


def read_answers(path: Path, dataset: str | None = None) -> tuple[pl.DataFrame, list[str]]:
    """Labels (user, scenario, day) from the CERT answer key, and warnings.

    ``path`` is the answers folder or its ``insiders.csv``. A labelled day is a day on which
    the insider's event file (``<details>``, anywhere under the answers folder) has a record;
    an insider whose event file is missing is labelled on every day from start to end, with a
    warning. The key covers every release; ``dataset`` (``4.2``, ``r6.2``) picks one and is
    needed when the key holds several.
    """
    index = path / "insiders.csv" if path.is_dir() else path
    root = index.parent
    rel = index.name
    if not index.is_file():
        raise FileError(str(index), None, "the CERT answer key has no insiders.csv")
    batch = read_landing_file(index, rel, spec.ANSWER_COLUMNS, spec.ANSWER_COLUMNS)
    if batch.rejects:
        raise FileError(rel, batch.rejects[0].line, batch.rejects[0].reason)
    key = batch.frame.with_columns(
        [pl.col(c).str.strip_chars() for c in spec.ANSWER_COLUMNS]
    ).with_columns(pl.col("dataset").str.strip_prefix("r"))
    releases = sorted(set(key["dataset"].drop_nulls().to_list()))
    if dataset is not None:
        wanted = dataset.removeprefix("r")
        if wanted not in releases:
            raise FileError(rel, None, f"no insiders of dataset {dataset!r}; it lists {releases}")
        key = key.filter(pl.col("dataset") == wanted)
    elif len(releases) > 1:
        raise FileError(
            rel, None, f"the key lists several datasets ({', '.join(releases)}): pass --dataset"
        )
    files = {p.name: p for p in root.rglob("*.csv") if p != index}
    labels: list[pl.DataFrame] = []
    warnings: list[str] = []
    for row in key.iter_rows(named=True):
        line = row[LINE]
        if not row["user"] or not row["scenario"]:
            raise FileError(rel, line, "missing user or scenario")
        events = files.get(row["details"] or "")
        if events is not None:
            days = _answer_days(events, root)
        else:
            first = _answer_stamp(row["start"], rel, line)
            last = _answer_stamp(row["end"], rel, line)
            days = pl.date_range(first.date(), last.date(), eager=True).to_list()
            warnings.append(
                f"{rel}:{line}: no event file {row['details']!r}; labelled {first.date()} – "
                f"{last.date()} whole"
            )
        labels.append(
            pl.DataFrame(
                {"user": row["user"], "scenario": row["scenario"], "day": days},
                schema={"user": pl.String, "scenario": pl.String, "day": pl.Date},
            )
        )
    if not labels:
        return pl.DataFrame(
            schema={"user": pl.String, "scenario": pl.String, "day": pl.Date}
        ), warnings
    return pl.concat(labels).unique().sort("user", "day"), warnings


def _answer_stamp(value: str | None, rel: str, line: int) -> datetime:
    for fmt in (spec.TIMESTAMP_FORMAT, "%m/%d/%Y %H:%M", "%m/%d/%Y"):
        try:
            return datetime.strptime((value or "").strip(), fmt)
        except ValueError:
            continue
    raise FileError(rel, line, f"not a CERT timestamp (MM/DD/YYYY HH:MM:SS): {value!r}")


def _answer_days(path: Path, root: Path) -> list[date]:
    """Days of the records in one insider's event file: ``type,id,date,user,…`` per line."""
    rel = path.relative_to(root).as_posix()
    days: set[date] = set()
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        for record in reader:
            if not record or record == [""]:
                continue
            line = reader.line_num
            if len(record) < 3 or record[0] not in spec.ANSWER_EVENT_TYPES:
                raise FileError(rel, line, "not a CERT answer record (type,id,date,…)")
            days.add(_answer_stamp(record[2], rel, line).date())
    return sorted(days)
