"""The reports open in real headless Chromium (Debian's package, a fresh profile, networking
off): no console errors, no request leaves the page, the key elements render, and a screenshot
of each is saved (under $INSIDERWATCH_SCREENSHOTS, else the test's temporary folder)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from insiderwatch.db import Database, default_url
from insiderwatch.digest import parse_period, write_digest
from insiderwatch.reports import write_daily_reports
from insiderwatch.store import EventStore
from tests.test_reports import CONFIG, alert_days, make_hostile

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    if os.environ.get("INSIDERWATCH_REQUIRE_BROWSER"):
        pytest.fail("chromium is required (INSIDERWATCH_REQUIRE_BROWSER) but not installed")
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)

playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    with playwright.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            offline=True,
            viewport={"width": 1280, "height": 900},
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
            ],
        )
        yield context
        context.close()


@pytest.fixture(scope="module")
def pages(reported_store: Path, tmp_path_factory) -> dict[str, Path]:
    """The reports of the last alert day, a quiet supervisor, the digest, and a day whose
    evidence carries hostile text."""
    store = tmp_path_factory.mktemp("browser") / "store"
    shutil.copytree(reported_store, store)
    day = alert_days(store)[-1]
    db = Database(default_url(store))
    written = write_daily_reports(EventStore(store), db, day, CONFIG)
    flagged = next(r for r in written.supervisors if r.flagged)
    quiet = next(r for r in written.supervisors if not r.flagged)
    japanese = write_daily_reports(
        EventStore(store), db, day, CONFIG, language="ja", out=store / "ja"
    )
    hostile_day, _ = make_hostile(store)
    hostile = write_daily_reports(EventStore(store), db, hostile_day, CONFIG, out=store / "bad")
    db.close()
    digest = write_digest(EventStore(store), parse_period("2024-06"), CONFIG)
    return {
        "security": written.security,
        "supervisor": flagged.html,
        "nothing_today": quiet.html,
        "security_ja": japanese.security,
        "hostile": hostile.security,
        "digest": digest,
    }


def open_report(browser, path: Path, name: str, tmp_path: Path):
    """Load ``path``; returns the page and everything it complained about or asked for."""
    page = browser.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on(
        "request",
        lambda r: problems.append(f"request: {r.url}") if not r.url.startswith("file:") else None,
    )
    page.goto(path.as_uri(), wait_until="load")
    shots = Path(os.environ.get("INSIDERWATCH_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    assert (shots / f"{name}.png").stat().st_size > 10_000
    return page, problems


def test_security_report_renders_cleanly(browser, pages, tmp_path: Path) -> None:
    page, problems = open_report(browser, pages["security"], "security", tmp_path)
    assert problems == []
    cards = page.locator("article.card")
    assert cards.count() == int(page.locator("#alert-count").inner_text()) > 0
    assert page.locator("#severity-chart svg").is_visible()
    assert page.locator("#department-grid tr").count() >= 2
    assert page.locator("article.card svg.spark").count() == cards.count()
    assert page.locator("article.card table.evidence tr").count() > cards.count()
    assert page.locator("#leavers-table tr").count() >= 2
    assert page.locator("#quality-table tr").count() >= 7
    box = page.locator("#severity-chart svg").bounding_box()
    assert box and box["width"] > 300 and box["height"] > 100
    page.close()


def test_supervisor_reports_render_cleanly(browser, pages, tmp_path: Path) -> None:
    page, problems = open_report(browser, pages["supervisor"], "supervisor", tmp_path)
    assert problems == []
    assert page.locator("article.card").count() >= 1
    assert page.locator("ol.confirm li").count() >= 1
    assert page.locator("svg.spark").first.is_visible()
    page.close()
    page, problems = open_report(browser, pages["nothing_today"], "nothing_today", tmp_path)
    assert problems == []
    assert page.locator("#nothing-today").is_visible()
    assert page.locator("article.card").count() == 0
    page.close()


def test_japanese_report_and_digest_render_cleanly(browser, pages, tmp_path: Path) -> None:
    page, problems = open_report(browser, pages["security_ja"], "security_ja", tmp_path)
    assert problems == []
    assert page.locator("h1").inner_text() == "日次セキュリティレポート"
    page.close()
    page, problems = open_report(browser, pages["digest"], "digest", tmp_path)
    assert problems == []
    assert int(page.locator("#digest-total").inner_text()) > 0
    assert page.locator("#digest-chart svg").is_visible()
    assert page.locator("#digest-examples tr").count() >= 2
    page.close()


def test_hostile_text_stays_text_in_the_browser(browser, pages, tmp_path: Path) -> None:
    from tests.test_reports import HOSTILE_PATH, HOSTILE_SUBJECT

    page, problems = open_report(browser, pages["hostile"], "hostile", tmp_path)
    assert problems == []  # no alert() dialog, no script error, no request for "x"
    body = page.locator("body").inner_text()
    assert HOSTILE_SUBJECT in body and HOSTILE_PATH in body
    assert page.locator("article.card script, article.card img").count() == 0
    page.close()
