"""Writing a SpectraTable as the Parquet layout that ``read_spectra`` reads fast."""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from specsoil._atomic import atomic_path
from specsoil._errors import SpecsoilError
from specsoil.data._readers import (
    _KEY_COLUMNS,
    _KEY_DETECTED,
    _KEY_KIND,
    _KEY_REASON,
    _KEY_VALUES,
    _rows_per_chunk,
    _wavelength_name,
)
from specsoil.data._table import SpectraTable


def write_parquet(
    table: SpectraTable, dst: str | os.PathLike[str], *, batch_rows: int = 2000
) -> None:
    """Write ``table`` as Parquet (metadata columns, then float32 absorbance per wavelength).

    The schema metadata records the kind of the source spectra and how it was decided, so
    :func:`read_spectra` gives the same table back. Written in row groups of at most
    ``batch_rows`` rows (and about 16 MB), renamed into place only when complete.

    Raises:
        SpecsoilError: If a metadata column is named like a wavelength column of the output.
    """
    spectral_names = [_wavelength_name(float(w)) for w in table.wavelengths]
    clash = sorted(set(spectral_names) & {str(c) for c in table.metadata.columns})
    if clash:
        raise SpecsoilError(
            f"{table.source}: metadata column {clash[0]!r} has the name of a wavelength "
            "column; rename it"
        )
    metadata = pa.Table.from_pandas(table.metadata, preserve_index=False)
    schema = pa.schema(
        [*metadata.schema, *(pa.field(name, pa.float32()) for name in spectral_names)],
        metadata={
            **(metadata.schema.metadata or {}),
            _KEY_VALUES: b"absorbance log10(1/R)",
            _KEY_KIND: table.spectra_kind.encode(),
            _KEY_DETECTED: b"true" if table.kind_detected else b"false",
            _KEY_REASON: table.kind_reason.encode(),
            _KEY_COLUMNS: json.dumps(spectral_names).encode(),
        },
    )
    # Spectral values are nearly all distinct: dictionary encoding would only add pages.
    dictionary = [str(c) for c in table.metadata.columns]
    with (
        atomic_path(dst) as tmp,
        pq.ParquetWriter(tmp, schema, use_dictionary=dictionary) as writer,
    ):
        group_rows = _rows_per_chunk(batch_rows, table.wavelengths.size)
        for start in range(0, table.n_samples, group_rows):
            rows = min(group_rows, table.n_samples - start)
            bands = np.ascontiguousarray(table.X[start : start + rows].T)  # (n_wavelengths, rows)
            columns = [metadata.column(i).slice(start, rows) for i in range(metadata.num_columns)]
            columns += [pa.array(bands[j]) for j in range(bands.shape[0])]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
