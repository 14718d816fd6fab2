"""Where the real instrument files are: ``shared/data/instruments`` beside the repository.

The files are never copied into the repository (some are GPL-labelled and must stay out of
the wheel and sdist); tests that need them skip, saying why, where the folder is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
INSTRUMENTS = ROOT.parent / "shared" / "data" / "instruments"


@pytest.fixture(scope="session")
def instruments() -> Path:
    """The folder of real instrument files (see its README for sources and licences)."""
    if not INSTRUMENTS.is_dir():
        pytest.skip(f"real instrument files not found at {INSTRUMENTS} (shared/ is absent)")
    return INSTRUMENTS
