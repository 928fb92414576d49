from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from insiderwatch.calendar import fixed_offset, is_workday, wall_clock, workday_expr
from insiderwatch.config import ConfigError, load_config
from insiderwatch.ingest import parse_timestamp, parse_timestamps


def test_unknown_config_key_fails_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text("[site]\ntimezon = 'Asia/Tokyo'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"site\.timezon: Extra inputs are not permitted"):
        load_config(path)


def test_wrong_config_type_fails_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text("[quality]\nfuture_tolerance_days = 'soon'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"quality\.future_tolerance_days"):
        load_config(path)


def test_unknown_time_zone_fails(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text("[site]\ntimezone = 'Mars/Olympus'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        load_config(path)


def test_site_file_overrides_only_the_keys_it_names(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text("[lists]\ncode_names = ['SAKURA']\n", encoding="utf-8")
    config = load_config(path)
    assert config.lists.code_names == ("SAKURA",)
    assert "gmail.com" in config.lists.free_mail_domains


moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 12, 31))
zones = st.sampled_from(["Asia/Tokyo", "UTC", "Europe/Berlin", "America/New_York"])


@settings(max_examples=200, deadline=None)
@given(moments, zones, st.booleans(), st.integers(min_value=-12 * 60, max_value=14 * 60))
def test_parse_timestamp_matches_python(
    moment: datetime, zone: str, with_offset: bool, offset_minutes: int
) -> None:
    # Text carries no fold: a repeated wall-clock time reads as its first instant (fold 0).
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000, fold=0)
    if with_offset:
        sign = "+" if offset_minutes >= 0 else "-"
        hh, mm = divmod(abs(offset_minutes), 60)
        text = moment.isoformat(timespec="milliseconds") + f"{sign}{hh:02d}:{mm:02d}"
        expected = datetime.fromisoformat(text).astimezone(UTC)
    else:
        text = moment.isoformat(sep=" ", timespec="seconds")
        local = moment.replace(microsecond=0, tzinfo=ZoneInfo(zone))
        if local.astimezone(UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None) != moment.replace(
            microsecond=0
        ):
            return  # a wall-clock time skipped by a DST change has no instant
        expected = local.astimezone(UTC)
    got = pl.select(parse_timestamp(pl.lit(text), zone)).item()
    if not with_offset and ZoneInfo(zone).utcoffset(moment) != ZoneInfo(zone).utcoffset(
        moment + timedelta(hours=1)
    ):
        return  # ambiguous hours near a change are resolved to the earlier instant
    assert got == expected


shapes = st.sampled_from(
    [
        lambda m: m.isoformat(sep=" ", timespec="seconds"),
        lambda m: m.isoformat(sep=" ", timespec="seconds"),  # the common shape, twice as likely
        lambda m: m.isoformat(timespec="seconds"),
        lambda m: m.isoformat(sep=" ", timespec="milliseconds"),
        lambda m: m.isoformat(timespec="seconds") + "Z",
        lambda m: m.isoformat(timespec="seconds") + "Z",  # the other common shape
        lambda m: m.isoformat(sep=" ", timespec="minutes") + "+09:00",
        lambda m: m.strftime("%Y/%m/%d %H:%M:%S"),
        lambda m: "",
    ]
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(moments, shapes), max_size=12), zones)
def test_column_parse_equals_the_general_parse(values: list, zone: str) -> None:
    """Whichever shape the column's first value has, and whatever the others have."""
    texts = pl.Series("t", [shape(m) or None for m, shape in values], dtype=pl.String)
    general = texts.to_frame().select(parse_timestamp(pl.col("t"), zone)).to_series()
    assert parse_timestamps(texts, zone).equals(general)


@settings(deadline=None)
@given(st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)))
def test_workday_expression_agrees_with_python(day: date) -> None:
    site = load_config().site
    got = pl.select(workday_expr(pl.lit(day), site, day, day)).item()
    assert got == is_workday(day, site)


def test_japanese_holidays_and_year_end_are_not_workdays() -> None:
    site = load_config().site
    assert not is_workday(date(2024, 4, 29), site)  # 昭和の日
    assert not is_workday(date(2024, 12, 30), site)  # year-end closure (config)
    assert not is_workday(date(2024, 4, 6), site)  # Saturday
    assert is_workday(date(2024, 4, 30), site)


def test_a_folder_rule_raises_a_file_to_its_folder_level_never_lowers_it() -> None:
    """A path's folder (a whole segment, not part of a file name) sets its level when that is
    stricter than the classification column."""
    from insiderwatch.features import effective_level

    config = load_config()
    assert config.lists.path_classification["極秘"] == "top_secret"
    rows = [
        ("\\\\fs01\\rnd\\極秘\\x.dwg", "public", "top_secret"),
        ("/data/マル秘/y.xlsx", None, "secret"),
        ("\\\\fs01\\社外秘", "public", "internal"),  # the last segment
        ("\\\\fs01\\社外秘\\plan.pptx", "top_secret", "top_secret"),  # the column is stricter
        ("\\\\fs01\\pub\\極秘資料.docx", "public", "public"),  # a file name, not a folder
        ("\\\\fs01\\部外秘\\a.txt", "public", "public"),  # another word that ends in 秘
        (None, "secret", "secret"),
        ("/a/b", None, None),
    ]
    frame = pl.DataFrame(
        [r[:2] for r in rows], schema=["path", "classification"], orient="row"
    ).select(effective_level(config))
    assert frame["level"].to_list() == [r[2] for r in rows]


_ZONES = st.sampled_from(
    ["Asia/Tokyo", "Europe/Berlin", "America/St_Johns", "Asia/Kathmandu", "Australia/Lord_Howe"]
)
# A zone, a moment, and up to 20 rows within three days after it (seconds from the moment).
_within_days = given(
    _ZONES,
    st.datetimes(datetime(2023, 1, 1), datetime(2025, 12, 31)),
    st.lists(st.integers(0, 3 * 24 * 3600), min_size=1, max_size=20),
)


@settings(max_examples=200, deadline=None)
@example("Europe/Berlin", datetime(2024, 3, 30, 12), [0, 13 * 3600, 14 * 3600])  # 31 March, 02:00
@example("Europe/Berlin", datetime(2024, 10, 26, 23), [0, 3600, 2 * 3600, 3 * 3600])
@example("Australia/Lord_Howe", datetime(2024, 4, 6, 14), [0, 3600, 2 * 3600])  # half an hour
@example("Asia/Tokyo", datetime(2024, 6, 2, 15), [0, 86399])  # a Tokyo day: one offset
@_within_days
def test_wall_clock_with_a_fixed_offset_equals_the_zone_rules(
    tz: str, start: datetime, seconds: list[int]
) -> None:
    """Rows within a few days (clock changes included: Berlin's hour, Lord Howe's half hour,
    Newfoundland's and Nepal's odd offsets): the offset is used only when the zone keeps one
    over the rows, and then each row's local time and date are the zone rules' own."""
    stamps = [start.replace(tzinfo=UTC) + timedelta(seconds=s) for s in seconds]
    frame = pl.DataFrame({"timestamp": stamps}, schema={"timestamp": pl.Datetime("us", "UTC")})
    offset = fixed_offset(tz, min(stamps), max(stamps))
    zone = ZoneInfo(tz)
    offsets = {s.astimezone(zone).utcoffset() for s in stamps}
    if offset is None:  # only when the clocks change somewhere in the rows' span
        first, last = min(stamps), max(stamps)
        minutes = range(int((last - first).total_seconds() // 60) + 1)
        seen = {(first + timedelta(minutes=m)).astimezone(zone).utcoffset() for m in minutes}
        assert len(seen | offsets) > 1
        return
    assert offsets == {offset}
    local = frame.select(
        fast=wall_clock(pl.col("timestamp"), tz, offset),
        rules=wall_clock(pl.col("timestamp"), tz, None),
    )
    assert local["fast"].equals(local["rules"], check_names=False)
    assert local["fast"].to_list() == [s.astimezone(zone).replace(tzinfo=None) for s in stamps]


@settings(max_examples=200, deadline=None)
@example("Europe/Berlin", datetime(2024, 3, 30, 12), [0, 14 * 3600, 14 * 3600 + 1800])  # skipped
@example("Europe/Berlin", datetime(2024, 10, 26, 23), [0, 3 * 3600, 3 * 3600 + 1800])  # repeated
@example("Europe/Berlin", datetime(2024, 3, 31, 2), [0, 1800])  # only skipped times
@example("Europe/Berlin", datetime(2024, 10, 27, 2), [0, 1800])  # only repeated times
@example("Australia/Lord_Howe", datetime(2024, 4, 6, 14), [0, 12 * 3600])  # half an hour
@example("Australia/Lord_Howe", datetime(2024, 4, 7, 1, 30), [0, 900])  # repeated, UTC+11
@example("Asia/Tokyo", datetime(2024, 6, 3, 0), [0, 3600])
@_within_days
def test_local_times_by_one_offset_equal_the_zone_rules(
    tz: str, start: datetime, seconds: list[int]
) -> None:
    """A day's file of local times, clock changes included: read by one offset when the zone
    keeps it, each time as the zone's rules read it (skipped times null, repeated ones the
    earlier instant)."""
    texts = pl.Series(
        "t", [(start + timedelta(seconds=s)).isoformat(sep=" ") for s in seconds], pl.String
    )
    general = texts.to_frame().select(parse_timestamp(pl.col("t"), tz)).to_series()
    assert parse_timestamps(texts, tz).equals(general)


_DOMAINS = ("dropbox.com", "box.com", "bizreach.jp", "Drop-Box.co.jp", "求人.jp")
_URL_TEXT = "abcxyzABCXYZ019.-_/:?#@%=日é"


@st.composite
def _urls(draw) -> str:
    """URLs as proxies log them, with user names, ports and look-alike hosts, or junk."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(_URL_TEXT, max_size=30))
    scheme = draw(st.sampled_from(["", "http://", "https://", "HTTPS://", "ftp://"]))
    user = draw(st.sampled_from(["", "me@", "me:pw@", "dropbox.com@", "a@b@", "box.com:x@"]))
    name = draw(st.sampled_from(_DOMAINS))
    host = draw(
        st.sampled_from(
            [name, name.upper(), "www." + name, "x" + name, name + ".evil.example", "", "box"]
        )
        | st.text(_URL_TEXT, max_size=12)
    )
    port = draw(st.sampled_from(["", ":443", ":", ":x@y"]))
    rest = draw(st.sampled_from(["", "/", "/a/b", "?to=dropbox.com", "#box.com", "/@box.com"]))
    return scheme + user + host + port + rest


@settings(max_examples=400, deadline=None)
@given(urls=st.lists(_urls() | st.none(), min_size=1, max_size=20), count=st.integers(1, 3))
@example(urls=["https://dropbox.com:pw@files.example/"], count=1)
@example(urls=["https://a@b@dropbox.com/x"], count=1)
@example(urls=["https://dropbox.com@"], count=1)
def test_url_in_domains_equals_the_host_in_domains(urls: list, count: int) -> None:
    from insiderwatch.features import in_domains, url_host, url_in_domains

    domains = _DOMAINS[:count]
    frame = pl.DataFrame({"url": urls}, schema={"url": pl.String})
    one_pass = frame.select(url_in_domains(pl.col("url"), domains)).to_series().to_list()
    by_host = frame.select(in_domains(url_host(pl.col("url")), domains)).to_series().to_list()
    assert one_pass == by_host


def test_the_host_is_after_the_last_at_sign_of_the_authority() -> None:
    from insiderwatch.features import url_host

    urls = [
        "https://me:pw@WWW.Dropbox.com:443/x?y=z",
        "https://a@b@box.com/@x",
        "box.com/x",
        "",
        None,
    ]
    hosts = pl.select(url_host(pl.Series(urls, dtype=pl.String))).to_series().to_list()
    assert hosts == ["www.dropbox.com", "box.com", "box.com", None, None]
