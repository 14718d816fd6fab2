"""Recognising library URLs without importing SQLAlchemy (the ``library`` extra)."""

from __future__ import annotations

# Schemes of the databases a library can live in; "postgres" is Heroku's spelling.
LIBRARY_SCHEMES = ("sqlite", "postgresql", "postgres")


def is_library_url(source: object) -> bool:
    """True when ``source`` is a database URL (``sqlite:///...``, ``postgresql://...``)."""
    if not isinstance(source, str) or "://" not in source:
        return False
    scheme = source.split("://", 1)[0].split("+", 1)[0].lower()
    return scheme in LIBRARY_SCHEMES
