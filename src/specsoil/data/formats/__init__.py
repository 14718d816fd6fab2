"""Readers for vendor instrument files; importing this package registers them.

Each format is one module that calls :func:`specsoil.data._scans.register_reader` on import.
"""

from specsoil.data.formats import (
    _asd,  # noqa: F401  (ASD FieldSpec .asd)
    _opus,  # noqa: F401  (Bruker OPUS .0/.1/.001)
    _spa,  # noqa: F401  (Thermo OMNIC .spa)
    _spc,  # noqa: F401  (Galactic SPC .spc)
)
