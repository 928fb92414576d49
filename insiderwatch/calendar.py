"""Working days in the site's calendar: national holidays (the `holidays` package) plus the
company's own closure days from config."""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache

import holidays as holiday_calendars
import polars as pl

from insiderwatch.config import SiteConfig


@cache
def _national(country: str, year: int) -> frozenset[date]:
    return frozenset(holiday_calendars.country_holidays(country, years=year).keys())


def holidays_between(site: SiteConfig, start: date, end: date) -> list[date]:
    """National and company holidays from start to end inclusive, weekends not included."""
    out: set[date] = set()
    for year in range(start.year, end.year + 1):
        out |= _national(site.holiday_country, year)
        for mmdd in site.company_holidays:
            out.add(date.fromisoformat(f"{year}-{mmdd}"))
    return sorted(d for d in out if start <= d <= end)


def is_workday(day: date, site: SiteConfig) -> bool:
    """Monday to Friday and not a national or company holiday.

    >>> from insiderwatch.config import load_config
    >>> is_workday(date(2024, 5, 3), load_config().site)  # 憲法記念日
    False
    """
    if day.weekday() >= 5:
        return False
    return day not in set(holidays_between(site, day, day))


def workday_expr(day: pl.Expr, site: SiteConfig, start: date, end: date) -> pl.Expr:
    """Polars predicate: ``day`` (a Date expression) is a working day.

    ``start``/``end`` bound the holiday list that is embedded in the expression.
    """
    closed = holidays_between(site, start - timedelta(days=1), end + timedelta(days=1))
    return (day.dt.weekday() <= 5) & ~day.is_in(pl.Series(closed, dtype=pl.Date).implode())
