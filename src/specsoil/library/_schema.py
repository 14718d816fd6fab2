"""The library's tables as typed SQLAlchemy ORM classes.

Changing a table means a new Alembic revision in ``migrations/versions`` as well; the test
suite checks that the migrations build exactly these tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints, so later revisions can drop or alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every library table."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: sa.JSON, list[Any]: sa.JSON}


class ImportBatch(Base):
    """One import: when, by whom, from what, and how the table's columns looked."""

    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    imported_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    user: Mapped[str] = mapped_column(sa.String(200))
    host: Mapped[str] = mapped_column(sa.String(200))
    specsoil_version: Mapped[str] = mapped_column(sa.String(50))
    source: Mapped[str] = mapped_column(sa.Text)
    # [{"name", "dtype", "role"}] in the table's column order: restores names and dtypes.
    columns: Mapped[list[Any]]
    n_spectra: Mapped[int]
    n_lab_values: Mapped[int]


class ImportFile(Base):
    """A file an import read, by content hash: where each batch's rows came from."""

    __tablename__ = "import_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(sa.ForeignKey("import_batches.id"), index=True)
    path: Mapped[str] = mapped_column(sa.Text)
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger)


class Site(Base):
    """A place samples were taken, with its coordinates and their CRS."""

    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    x: Mapped[float | None] = mapped_column(sa.Float(precision=53))
    y: Mapped[float | None] = mapped_column(sa.Float(precision=53))
    crs_epsg: Mapped[int | None]


class Sample(Base):
    """A soil sample: its code, site, depth and every other column of its table row."""

    __tablename__ = "samples"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(200), unique=True)
    site_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sites.id"), index=True)
    depth_top_cm: Mapped[float | None] = mapped_column(sa.Float(precision=53))
    depth_bottom_cm: Mapped[float | None] = mapped_column(sa.Float(precision=53))
    batch_id: Mapped[int] = mapped_column(sa.ForeignKey("import_batches.id"), index=True)
    meta: Mapped[dict[str, Any]]


class Instrument(Base):
    """A spectrometer."""

    __tablename__ = "instruments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    serial: Mapped[str | None] = mapped_column(sa.String(200))
    kind: Mapped[str | None] = mapped_column(sa.String(200))


class WavelengthAxis(Base):
    """A wavelength axis (float64 nm) shared by every spectrum measured on it."""

    __tablename__ = "wavelength_axes"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    n_bands: Mapped[int]
    first_nm: Mapped[float] = mapped_column(sa.Float(precision=53))
    last_nm: Mapped[float] = mapped_column(sa.Float(precision=53))
    wavelengths: Mapped[bytes] = mapped_column(sa.LargeBinary)


class Spectrum(Base):
    """One scan: float32 absorbance values on an axis, from an instrument, of a sample."""

    __tablename__ = "spectra"

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(sa.ForeignKey("samples.id"), index=True)
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id"), index=True)
    axis_id: Mapped[int] = mapped_column(sa.ForeignKey("wavelength_axes.id"))
    batch_id: Mapped[int] = mapped_column(sa.ForeignKey("import_batches.id"), index=True)
    # Absorbance log10(1/R) as little-endian float32; spectra_kind is what the source held.
    absorbance: Mapped[bytes] = mapped_column(sa.LargeBinary)
    spectra_kind: Mapped[str] = mapped_column(sa.String(40))
    replicate: Mapped[int]
    acquired_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    source_file: Mapped[str | None] = mapped_column(sa.Text)
    # Hash of instrument, sample, axis and values: re-importing a scan adds nothing.
    content_sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # Columns whose values differ between the scans of one sample.
    meta: Mapped[dict[str, Any]]


class Property(Base):
    """A soil property measured in the lab, with its unit and method."""

    __tablename__ = "properties"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    unit: Mapped[str | None] = mapped_column(sa.String(100))
    method: Mapped[str | None] = mapped_column(sa.Text)


class LabValue(Base):
    """A lab value of one property for one sample; censored values keep their qualifier."""

    __tablename__ = "lab_values"
    __table_args__ = (sa.UniqueConstraint("sample_id", "property_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(sa.ForeignKey("samples.id"))
    property_id: Mapped[int] = mapped_column(sa.ForeignKey("properties.id"), index=True)
    batch_id: Mapped[int] = mapped_column(sa.ForeignKey("import_batches.id"), index=True)
    value: Mapped[float | None] = mapped_column(sa.Float(precision=53))
    # "<", "<=", ">" or ">=" for a value below or above a detection limit; None otherwise.
    qualifier: Mapped[str | None] = mapped_column(sa.String(2))
    censored: Mapped[bool]
    # The text as the table held it, when it was not a plain number (e.g. "<0.5").
    raw: Mapped[str | None] = mapped_column(sa.Text)


def table_of(model: type[Base]) -> sa.Table:
    """The Core table of an ORM class (the bulk paths use Core inserts and selects)."""
    table = model.__table__
    assert isinstance(table, sa.Table)
    return table
