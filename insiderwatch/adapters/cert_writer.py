"""Write a canonical landing folder in the CERT insider-threat layout (r4.2 or r6.2), with an
answer key: test data for the CERT adapter and for ``evaluate`` on the CERT key.

The CERT data may not be redistributed, so tests use files written here from a synthetic
organisation (``insiderwatch samples generate``). The layout follows each release's readme,
quirks included: GUID ids in curly braces, ``MM/DD/YYYY HH:MM:SS`` local timestamps, some
logoffs never recorded, ``;``-separated recipients, and keyword ``content`` columns with
commas and quotes inside quotes.

What CERT cannot carry is lost on the way, as it would be in the real data: print jobs,
classification, business systems, remote logons, notice dates, and in r4 the web activity
(every request is a visit), file actions other than copies to removable media, and received
mail.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from insiderwatch.config import config_for_logs
from schemas import cert as spec

Release = Literal["r4.2", "r6.2"]
DROPPED_LOGOFFS = 0.05  # share of logoffs left out, as CERT leaves some out
_HEADERS = {
    "r4.2": {f.name: f.layouts[0] for f in spec.EVENT_FILES},
    "r6.2": {f.name: f.layouts[-1] for f in spec.EVENT_FILES},
}
_R6_FILE_ACTIONS = {
    "open": "File Open",
    "read": "File Open",
    "write": "File Write",
    "download": "File Write",
    "copy": "File Copy",
    "move": "File Copy",
    "delete": "File Delete",
}
_MAGIC = {".docx": "50-4B-03-04", ".xlsx": "50-4B-03-04", ".pptx": "50-4B-03-04",
          ".pdf": "25-50-44-46", ".csv": "", ".zip": "50-4B-03-04"}  # fmt: skip
_WORDS = ("design", "test", "schedule", "review", "cost", "quality", "supplier", "yield", "wafer")


def _read_source(logs: Path, source: str) -> pl.DataFrame:
    files = sorted((logs / source).glob("*.csv*"))
    if not files:
        return pl.DataFrame()
    return pl.concat([pl.read_csv(f, infer_schema=False) for f in files], how="diagonal_relaxed")


def _local(expr: pl.Expr, tz: str) -> pl.Expr:
    """Canonical timestamp text -> CERT local text."""
    text = expr.str.replace(" ", "T", literal=True)
    with_zone = text.str.contains(r"(Z|[+-]\d{2}:?\d{2})$")
    aware = (
        text.str.replace(r"Z$", "+00:00")
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%z", strict=False, time_zone="UTC")
        .dt.convert_time_zone(tz)
        .dt.replace_time_zone(None)
    )
    naive = text.str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False)
    return pl.when(with_zone).then(aware).otherwise(naive)


def _ids(rng: np.random.Generator, n: int) -> list[str]:
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
    chars = alphabet[rng.integers(0, len(alphabet), size=(n, 20))]
    return ["{" + f"{r[:4]}-{r[4:12]}-{r[12:]}" + "}" for r in ("".join(c) for c in chars)]


def _content(rng: np.random.Generator, n: int, extra: pl.Series | None = None) -> pl.Series:
    """Keyword bags; about one in four holds a comma and one in ten a quoted word."""
    bags = []
    for _ in range(256):
        text = " ".join(rng.choice(_WORDS, size=int(rng.integers(2, 6))))
        if rng.random() < 0.25:
            text += ", " + str(rng.choice(_WORDS))
        if rng.random() < 0.1:
            text += ' "draft"'
        bags.append(text)
    bag = pl.Series(bags)[rng.integers(0, len(bags), size=n)]
    if extra is None:
        return bag.alias("content")
    return (
        pl.select(pl.concat_str([extra.fill_null(""), bag], separator=" ").str.strip_chars())
        .to_series()
        .alias("content")
    )


def write_cert(logs: Path, out: Path, release: Release = "r6.2", seed: int = 1) -> dict[str, int]:
    """Write ``logs`` (canonical) as a CERT release under ``out``; returns records per file."""
    rng = np.random.default_rng(seed)
    config = config_for_logs(logs)
    tz = config.site.timezone
    roster = pl.read_csv(logs / "hr" / "employees.csv", infer_schema=False)
    out.mkdir(parents=True, exist_ok=True)
    headers = _HEADERS[release]
    r6 = release == "r6.2"
    hosts = _hosts(logs, roster)
    written: dict[str, int] = {}
    frames: dict[str, pl.DataFrame] = {}

    logon = _read_source(logs, "logon")
    logon = logon.filter(
        ~((pl.col("activity") == "logoff") & pl.Series(rng.random(logon.height) < DROPPED_LOGOFFS))
    )
    frames["logon.csv"] = logon.select(
        date=_local(pl.col("timestamp"), tz),
        user="user",
        pc="host",
        activity=pl.col("activity").replace({"logon": "Logon", "logoff": "Logoff"}),
    )
    device = _read_source(logs, "device")
    frames["device.csv"] = device.select(
        date=_local(pl.col("timestamp"), tz),
        user="user",
        pc="host",
        file_tree=pl.when(pl.col("activity") == "connect").then(pl.lit("R:\\;R:\\Projects")),
        activity=pl.col("activity").replace({"connect": "Connect", "disconnect": "Disconnect"}),
    )
    files = _read_source(logs, "file_access")
    if not r6:
        files = files.filter(pl.col("destination") == "removable")
    files = files.filter(pl.col("action").is_in(list(_R6_FILE_ACTIONS)))
    ext = pl.col("path").str.extract(r"(\.[A-Za-z0-9]+)$").str.to_lowercase()
    frames["file.csv"] = files.select(
        date=_local(pl.col("timestamp"), tz),
        user="user",
        pc="host",
        filename="path",
        activity=pl.col("action").replace(_R6_FILE_ACTIONS),
        to_removable_media=pl.when(pl.col("destination") == "removable")
        .then(pl.lit("True"))
        .otherwise(pl.lit("False")),
        from_removable_media=pl.lit("False"),
        content=ext.replace_strict(_MAGIC, default="", return_dtype=pl.String),
    )
    web = _read_source(logs, "web")
    frames["http.csv"] = web.select(
        date=_local(pl.col("timestamp"), tz),
        user="user",
        pc="host",
        url="url",
        activity=pl.col("action").replace(
            {"visit": "WWW Visit", "download": "WWW Download", "upload": "WWW Upload"}
        ),
    )
    frames["email.csv"] = _mail(logs, roster, hosts, tz, r6, rng)

    for name, frame in frames.items():
        if frame.height == 0:
            continue
        frame = frame.sort("date", "user", maintain_order=True).with_columns(
            pl.col("date").dt.strftime(spec.TIMESTAMP_FORMAT)
        )
        extra = frame["content"] if "content" in frame.columns else None
        frame = frame.with_columns(
            pl.Series("id", _ids(rng, frame.height)),
            _content(rng, frame.height, extra),
        )
        frame = frame.select(
            [pl.col(c) if c in frame.columns else pl.lit("") for c in headers[name]]
        )
        frame = frame.with_columns(pl.when(pl.all() != "").then(pl.all()))
        frames[name] = frame
        (out / name).write_text(frame.write_csv(), encoding="utf-8")
        written[name] = frame.height
    _write_ldap(roster, out, r6, _months(frames))
    site = logs / "insiderwatch.toml"
    if site.is_file():  # not part of CERT: the synthetic organisation's own settings
        (out / site.name).write_text(site.read_text(encoding="utf-8"), encoding="utf-8")
    _write_answers(logs, out, release, frames)
    return written


def _hosts(logs: Path, roster: pl.DataFrame) -> pl.DataFrame:
    logon = _read_source(logs, "logon")
    usual = logon.group_by("user", "host").len().sort("len", "host", descending=[True, False])
    usual = usual.group_by("user", maintain_order=True).first().select("user", "host")
    return (
        roster.select("user")
        .join(usual, on="user", how="left")
        .with_columns(
            pl.col("host").fill_null(pl.format("PC-{}", pl.col("user").str.to_uppercase()))
        )
    )


def _mail(
    logs: Path,
    roster: pl.DataFrame,
    hosts: pl.DataFrame,
    tz: str,
    r6: bool,
    rng: np.random.Generator,
) -> pl.DataFrame:
    mail = _read_source(logs, "mail")
    # CERT mail often goes to several people: copy one in five to a colleague as well.
    colleagues = roster["email"].to_numpy()[rng.integers(0, roster.height, size=mail.height)]
    also = pl.Series(rng.random(mail.height) < 0.2)
    mail = mail.with_columns(
        recipients=pl.when(also)
        .then(pl.concat_str([pl.col("recipients"), pl.Series(colleagues)], separator=";"))
        .otherwise(pl.col("recipients"))
    )
    addresses = pl.concat(
        [
            roster.select("user", address=pl.col("email").str.to_lowercase()),
            roster.select("user", address=pl.col("personal_emails").str.split(";"))
            .explode("address")
            .drop_nulls()
            .filter(pl.col("address") != "")
            .with_columns(pl.col("address").str.to_lowercase()),
        ]
    ).unique("address", keep="first", maintain_order=True)
    mail = mail.with_row_index("_m").with_columns(
        first_rcpt=pl.col("recipients").str.split(";").list.first().str.to_lowercase(),
        sender_l=pl.col("sender").str.to_lowercase(),
    )
    mail = (
        mail.join(
            addresses.rename({"user": "sender_user"}),
            left_on="sender_l",
            right_on="address",
            how="left",
        )
        .join(
            addresses.rename({"user": "rcpt_user"}),
            left_on="first_rcpt",
            right_on="address",
            how="left",
        )
        .sort("_m")
    )
    outbound = pl.col("direction") == "outbound"
    mail = mail.with_columns(
        user=pl.when(outbound).then(pl.col("sender_user")).otherwise(pl.col("rcpt_user"))
    ).filter(pl.col("user").is_not_null())
    if not r6:
        mail = mail.filter(outbound)
    names = (
        pl.col("attachment_names")
        .fill_null("")
        .str.split(";")
        .list.eval(pl.element().filter(pl.element() != ""))
    )
    count = names.list.len()
    each = pl.col("attachment_bytes").cast(pl.Int64, strict=False).fill_null(
        0
    ) // pl.max_horizontal(count, 1)
    mail = mail.with_columns(_count=count, _each=each, _names=names)
    if r6:
        # "C:\Users\me\Documents\name.docx(12345)", ';'-separated, as r6 writes them.
        listed = (
            mail.select("_m", "_each", name="_names")
            .explode("name", keep_nulls=False, empty_as_null=False)
            .group_by("_m", maintain_order=True)
            .agg(
                attachments=pl.format("C:\\Users\\me\\Documents\\{}({})", "name", "_each").str.join(
                    ";"
                )
            )
        )
        mail = (
            mail.drop("attachments")
            .join(listed, on="_m", how="left")
            .with_columns(pl.col("attachments").fill_null(""))
        )
    else:
        mail = mail.with_columns(attachments=pl.col("_count").cast(pl.String))
    return (
        mail.join(hosts.rename({"host": "pc"}), on="user", how="left")
        .sort("_m")
        .select(
            date=_local(pl.col("timestamp"), tz),
            user="user",
            pc="pc",
            to="recipients",
            cc=pl.col("cc").fill_null(""),
            bcc=pl.col("bcc").fill_null(""),
            **{"from": pl.col("sender")},
            activity=pl.when(outbound).then(pl.lit("Send")).otherwise(pl.lit("View")),
            size=pl.col("size_bytes").fill_null("0"),
            attachments="attachments",
            content=pl.concat_str(
                [pl.col("subject").fill_null(""), pl.col("body").fill_null("")], separator=" "
            ),
        )
    )


def _months(frames: dict[str, pl.DataFrame]) -> list[date]:
    days = pl.concat(
        [
            f.select(d=pl.col("date").str.to_date(spec.TIMESTAMP_FORMAT, strict=False))
            for f in frames.values()
            if f.height
        ]
    )["d"]
    first, last = days.min(), days.max()
    months, current = [], date(first.year, first.month, 1)
    while current <= last:
        months.append(current)
        current = date(current.year + current.month // 12, current.month % 12 + 1, 1)
    return months


def _write_ldap(roster: pl.DataFrame, out: Path, r6: bool, months: list[date]) -> None:
    folder = out / spec.LDAP_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    header = list(spec.LDAP_REQUIRED)
    if r6:
        header.insert(4, "projects")
    # CERT names are unique; a shared name gets the id to tell the two apart.
    shared = pl.col("name").is_duplicated()
    people = roster.with_columns(
        employee_name=pl.when(shared).then(pl.format("{} ({})", "name", "user")).otherwise("name"),
        hired=pl.col("hire_date").str.to_date(),
        left=pl.col("last_day").str.to_date(strict=False),
    )
    names = people.select(pl.col("user").alias("supervisor"), sup_name="employee_name")
    people = people.join(names, on="supervisor", how="left", maintain_order="left")
    for month in months:
        month_end = (
            date(month.year + month.month // 12, month.month % 12 + 1, 1)
            if month.month < 12
            else date(month.year + 1, 1, 1)
        )
        # As in the published releases, a month's snapshot lists the people still there at its
        # end: someone leaving mid-month is missing from that month's snapshot, yet works in it.
        listed = people.filter(
            (pl.col("hired") < month_end)
            & (pl.col("left").is_null() | (pl.col("left") >= month_end - timedelta(days=1)))
        )
        frame = listed.select(
            "employee_name",
            user_id="user",
            email="email",
            role="role",
            projects=pl.lit(""),
            business_unit=pl.lit("1"),
            functional_unit=pl.format("1 - {}", "department"),
            department="department",
            team=pl.format("{} - {}", "department", "role"),
            supervisor=pl.col("sup_name").fill_null(""),
        ).select(header)
        frame = frame.with_columns(pl.when(pl.all() != "").then(pl.all()))
        (folder / f"{month:%Y-%m}.csv").write_text(frame.write_csv(), encoding="utf-8")


def _write_answers(
    logs: Path, out: Path, release: Release, frames: dict[str, pl.DataFrame]
) -> None:
    """answers/insiders.csv and one event file per insider, as the CERT answer key has them."""
    labels_path = logs / "labels.csv"
    if not labels_path.is_file():
        return
    labels = pl.read_csv(labels_path, infer_schema=False).with_columns(
        day=pl.col("date").str.to_date()
    )
    dataset = release.removeprefix("r")
    scenarios = {
        name: i + 1 for i, name in enumerate(sorted(labels["scenario"].unique().to_list()))
    }
    answers = out / "answers"
    answers.mkdir(parents=True, exist_ok=True)
    rows = []
    for (user, scenario), days in labels.group_by("user", "scenario", maintain_order=True):
        number = scenarios[scenario]
        wanted = set(days["day"].to_list())
        lines = []
        for name, frame in frames.items():
            kind = name.removesuffix(".csv")
            mine = (
                frame.filter(pl.col("user") == user)
                .with_columns(_d=pl.col("date").str.to_date(spec.TIMESTAMP_FORMAT))
                .filter(pl.col("_d").is_in(list(wanted)))
            )
            for record in mine.drop("_d").iter_rows():
                buf = io.StringIO()
                csv.writer(buf, lineterminator="\n").writerow([kind, *record])
                lines.append((record[1], buf.getvalue()))
        if not lines:
            continue
        lines.sort(key=lambda item: datetime.strptime(item[0], spec.TIMESTAMP_FORMAT))
        details = f"r{dataset}-{number}-{user}.csv"
        folder = answers / f"r{dataset}-{number}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / details).write_text("".join(text for _, text in lines), encoding="utf-8")
        rows.append((dataset, number, details, user, lines[0][0], lines[-1][0]))
    table = pl.DataFrame(rows, schema=list(spec.ANSWER_COLUMNS), orient="row")
    (answers / "insiders.csv").write_text(table.write_csv(), encoding="utf-8")
    mapping = pl.DataFrame({"scenario": list(scenarios.values()), "name": list(scenarios)})
    (answers / "scenario_names.csv").write_text(mapping.write_csv(), encoding="utf-8")
