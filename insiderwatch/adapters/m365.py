"""Microsoft 365 exports -> staged canonical landing files (written in the next step)."""

from __future__ import annotations

from pathlib import Path


def looks_like(folder: Path) -> bool:
    return False
