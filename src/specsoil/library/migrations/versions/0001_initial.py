"""The first library schema.

Sites, samples, instruments, wavelength axes, spectra, properties, lab values and import
batches with their files.

Revision ID: 0001
Revises: (none)
Create Date: 2026-12-04 17:21:24.414336
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "import_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("specsoil_version", sa.String(length=50), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("n_spectra", sa.Integer(), nullable=False),
        sa.Column("n_lab_values", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_batches")),
    )
    op.create_table(
        "instruments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("serial", sa.String(length=200), nullable=True),
        sa.Column("kind", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instruments")),
        sa.UniqueConstraint("name", name=op.f("uq_instruments_name")),
    )
    op.create_table(
        "properties",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("unit", sa.String(length=100), nullable=True),
        sa.Column("method", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_properties")),
        sa.UniqueConstraint("name", name=op.f("uq_properties_name")),
    )
    op.create_table(
        "sites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("x", sa.Float(precision=53), nullable=True),
        sa.Column("y", sa.Float(precision=53), nullable=True),
        sa.Column("crs_epsg", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
        sa.UniqueConstraint("name", name=op.f("uq_sites_name")),
    )
    op.create_table(
        "wavelength_axes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("n_bands", sa.Integer(), nullable=False),
        sa.Column("first_nm", sa.Float(precision=53), nullable=False),
        sa.Column("last_nm", sa.Float(precision=53), nullable=False),
        sa.Column("wavelengths", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wavelength_axes")),
        sa.UniqueConstraint("sha256", name=op.f("uq_wavelength_axes_sha256")),
    )
    op.create_table(
        "import_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["import_batches.id"],
            name=op.f("fk_import_files_batch_id_import_batches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_files")),
    )
    with op.batch_alter_table("import_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_import_files_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_import_files_sha256"), ["sha256"], unique=False)

    op.create_table(
        "samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=200), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("depth_top_cm", sa.Float(precision=53), nullable=True),
        sa.Column("depth_bottom_cm", sa.Float(precision=53), nullable=True),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["import_batches.id"], name=op.f("fk_samples_batch_id_import_batches")
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_samples_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_samples")),
        sa.UniqueConstraint("code", name=op.f("uq_samples_code")),
    )
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_samples_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_samples_site_id"), ["site_id"], unique=False)

    op.create_table(
        "lab_values",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("property_id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(precision=53), nullable=True),
        sa.Column("qualifier", sa.String(length=2), nullable=True),
        sa.Column("censored", sa.Boolean(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["import_batches.id"], name=op.f("fk_lab_values_batch_id_import_batches")
        ),
        sa.ForeignKeyConstraint(
            ["property_id"], ["properties.id"], name=op.f("fk_lab_values_property_id_properties")
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["samples.id"], name=op.f("fk_lab_values_sample_id_samples")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lab_values")),
        sa.UniqueConstraint("sample_id", "property_id", name=op.f("uq_lab_values_sample_id")),
    )
    with op.batch_alter_table("lab_values", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lab_values_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_lab_values_property_id"), ["property_id"], unique=False
        )

    op.create_table(
        "spectra",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("instrument_id", sa.Integer(), nullable=False),
        sa.Column("axis_id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("absorbance", sa.LargeBinary(), nullable=False),
        sa.Column("spectra_kind", sa.String(length=40), nullable=False),
        sa.Column("replicate", sa.Integer(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source_file", sa.Text(), nullable=True),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["axis_id"], ["wavelength_axes.id"], name=op.f("fk_spectra_axis_id_wavelength_axes")
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["import_batches.id"], name=op.f("fk_spectra_batch_id_import_batches")
        ),
        sa.ForeignKeyConstraint(
            ["instrument_id"], ["instruments.id"], name=op.f("fk_spectra_instrument_id_instruments")
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["samples.id"], name=op.f("fk_spectra_sample_id_samples")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spectra")),
        sa.UniqueConstraint("content_sha256", name=op.f("uq_spectra_content_sha256")),
    )
    with op.batch_alter_table("spectra", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_spectra_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_spectra_instrument_id"), ["instrument_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_spectra_sample_id"), ["sample_id"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        # Float32 noise does not compress: skip TOAST's compression attempt on every spectrum.
        op.execute("ALTER TABLE spectra ALTER COLUMN absorbance SET STORAGE EXTERNAL")


def downgrade() -> None:
    """Undo this revision."""
    with op.batch_alter_table("spectra", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_spectra_sample_id"))
        batch_op.drop_index(batch_op.f("ix_spectra_instrument_id"))
        batch_op.drop_index(batch_op.f("ix_spectra_batch_id"))

    op.drop_table("spectra")
    with op.batch_alter_table("lab_values", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lab_values_property_id"))
        batch_op.drop_index(batch_op.f("ix_lab_values_batch_id"))

    op.drop_table("lab_values")
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_samples_site_id"))
        batch_op.drop_index(batch_op.f("ix_samples_batch_id"))

    op.drop_table("samples")
    with op.batch_alter_table("import_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_import_files_sha256"))
        batch_op.drop_index(batch_op.f("ix_import_files_batch_id"))

    op.drop_table("import_files")
    op.drop_table("wavelength_axes")
    op.drop_table("sites")
    op.drop_table("properties")
    op.drop_table("instruments")
    op.drop_table("import_batches")
