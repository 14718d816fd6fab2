"""Fixtures for the vendor-format tests: the real instrument files and corrupted copies.

The instrument files live in ``<repo>/../shared/data/instruments`` (CI lays ``shared/``
beside the clone). They are never copied into the repository: some are GPL-labelled and
must stay out of the wheel and the sdist.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
INSTRUMENTS = ROOT.parent / "shared" / "data" / "instruments"


@pytest.fixture(scope="session")
def instruments() -> Path:
    """The folder of real instrument files; skips when it is absent."""
    if not INSTRUMENTS.is_dir():
        pytest.skip(f"real instrument files not found at {INSTRUMENTS} (shared/ beside the repo)")
    return INSTRUMENTS


@pytest.fixture
def variant(tmp_path: Path) -> Callable[[Path, bytes, str | None], Path]:
    """Write ``data`` to tmp_path under ``name`` (default: the source's name); return it."""

    def write(source: Path, data: bytes, name: str | None = None) -> Path:
        target = tmp_path / (name or source.name)
        target.write_bytes(bytes(data))
        return target

    return write
