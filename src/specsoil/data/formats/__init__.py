"""Instrument file formats: importing this package registers one reader per format.

Each module reads one format into :class:`specsoil.data.RawSpectra` and registers its reader
when imported; adding a format is one module plus one import line here.
"""

# ruff: noqa: F401 - each import registers its module's reader.
import specsoil.data.formats._asd
import specsoil.data.formats._envi_sli
import specsoil.data.formats._jcamp
import specsoil.data.formats._opus
import specsoil.data.formats._sed
import specsoil.data.formats._sig
import specsoil.data.formats._spa
import specsoil.data.formats._spc
