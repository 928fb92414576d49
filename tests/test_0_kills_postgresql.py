"""kill -9 during a run with the alerts on PostgreSQL, then a rerun: the store as one
uninterrupted run leaves it (part b of two; see tests/killing.py)."""

from __future__ import annotations

from pathlib import Path

from tests.killing import KILLS_PER_FILE, check_concurrent, check_kills


def test_a_rerun_after_kill_9_leaves_what_an_uninterrupted_run_leaves_on_postgresql(
    tmp_path_factory, tmp_path: Path, postgres_url: str
) -> None:
    killed = check_kills(2, tmp_path_factory, tmp_path, postgres_url)
    assert killed == KILLS_PER_FILE


def test_a_second_run_started_during_a_run_is_turned_away_on_postgresql(
    tmp_path_factory, tmp_path: Path, postgres_url: str
) -> None:
    check_concurrent(tmp_path_factory, tmp_path, postgres_url)
