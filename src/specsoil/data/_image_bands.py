"""Band wavelengths of image cubes (ENVI, GeoTIFF): the registry's image readers.

``specsoil.maps`` opens a cube with rasterio (GDAL) and hands its tags over as
:class:`ImageTags`; the parsing lives here, with the other formats, and needs no rasterio.
Wavelengths are taken from, in order of preference:

1. the ENVI header: ``wavelength = {...}`` with ``wavelength units`` (GDAL's ENVI domain);
2. band metadata items ``wavelength`` (+ ``wavelength_units``), as GDAL sets them for ENVI
   files and as tools write them into GeoTIFF band tags, or GDAL's standard
   ``CENTRAL_WAVELENGTH_UM`` item (IMAGERY domain);
3. band descriptions that are a number with an optional unit: ``"1000"``, ``"1000 nm"``,
   ``"2.2 um"``.

Units may be nanometres or micrometres (converted to nm); without a unit, values below 30
are taken as micrometres.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from specsoil._errors import SpecsoilError
from specsoil.data._registry import image_reader_for, register_reader

# Unitless wavelengths below this are micrometres (no sensor has bands below 30 nm).
_MICROMETRE_BELOW = 30.0
_NANOMETRES = {"nm", "nanometer", "nanometers", "nanometre", "nanometres"}
_MICROMETRES = {
    "um",
    "µm",
    "μm",
    "micron",
    "microns",
    "micrometer",
    "micrometers",
    "micrometre",
    "micrometres",
}
_NUMBER_WITH_UNIT = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*([A-Za-zµμ]*)\s*$")
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_ENVI_DATA_SUFFIXES = ("", ".img", ".dat", ".bsq", ".bil", ".bip", ".raw")


@dataclass(frozen=True)
class ImageTags:
    """What an image cube says about its bands, as GDAL exposes it (keys lower-cased).

    Attributes:
        source: The file, for messages.
        envi: The ENVI domain (header entries; ``wavelength``, ``wavelength_units``, ``bbl``).
        bands: Each band's default-domain metadata (``wavelength``, ``wavelength_units``).
        imagery: Each band's IMAGERY-domain metadata (``central_wavelength_um``).
        descriptions: Each band's description, or None.
    """

    source: str
    envi: Mapping[str, str] = field(default_factory=dict)
    bands: Sequence[Mapping[str, str]] = ()
    imagery: Sequence[Mapping[str, str]] = ()
    descriptions: Sequence[str | None] = ()


def lower_keys(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags with their keys lower-cased (GDAL keeps the file's spelling)."""
    return {k.lower(): v for k, v in tags.items()}


def wavelengths_to_nm(
    values: NDArray[np.float64], unit: str | None, *, source: str
) -> NDArray[np.float64]:
    """Wavelengths in ``unit`` (nm or µm spellings; None: judged by magnitude) as nm.

    Raises:
        SpecsoilError: If the unit is neither nanometres nor micrometres.
    """
    name = (unit or "").strip().lower()
    if name in _NANOMETRES:
        return values
    if name in _MICROMETRES:
        return values * 1000.0
    if name in ("", "unknown"):
        # Without a unit, the magnitude tells: 0.4-2.5 can only be micrometres.
        return values * 1000.0 if values.size and np.nanmax(values) < _MICROMETRE_BELOW else values
    raise SpecsoilError(
        f"{source}: wavelength units {unit!r} are not supported; expected nanometers or micrometers"
    )


def _number(text: str, *, source: str, key: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SpecsoilError(f"{source}: {key} value {text!r} is not a number") from None


def parse_envi_list(text: str, *, source: str, key: str) -> NDArray[np.float64]:
    """An ENVI ``{a, b, c}`` list of numbers; an entry that is not a number names ``key``."""
    words = [w for w in re.split(r"[\s,{}]+", text) if w]
    return np.asarray([_number(w, source=source, key=key) for w in words], dtype=np.float64)


def read_wavelengths_file(path: str | Path) -> NDArray[np.float64]:
    """Read band wavelengths from a text file: numbers separated by commas, spaces or lines.

    An optional unit (``nm``, ``um``) may end the file, after the last number; unitless
    values below 30 are taken as micrometres.

    Raises:
        SpecsoilError: If the file is missing or holds something that is not a number.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecsoilError(f"{source}: cannot read the wavelengths file ({exc})") from None
    words = [w for w in re.split(r"[\s,;{}]+", text) if w]
    unit: str | None = None
    if words and words[-1].lower() in _NANOMETRES | _MICROMETRES:
        unit = words.pop()
    values = []
    for position, word in enumerate(words, start=1):
        try:
            values.append(float(word))
        except ValueError:
            raise SpecsoilError(
                f"{source}: value {position} ({word!r}) is not a wavelength number"
            ) from None
    if not values:
        raise SpecsoilError(f"{source}: no wavelengths in the file")
    return wavelengths_to_nm(np.asarray(values, dtype=np.float64), unit, source=str(source))


def wavelengths_from_tags(tags: ImageTags) -> tuple[NDArray[np.float64], str] | None:
    """Band centres in nm from the tags (see the module doc for the order), or None.

    Returns:
        The wavelengths in band order and where they came from, or None when the tags say
        nothing about wavelengths.

    Raises:
        SpecsoilError: If a wavelength entry is not a number or has an unsupported unit.
    """
    source = tags.source
    if "wavelength" in tags.envi:
        values = parse_envi_list(tags.envi["wavelength"], source=source, key="wavelength")
        unit = tags.envi.get("wavelength_units")
        return wavelengths_to_nm(values, unit, source=source), "ENVI header"
    if tags.bands and all("wavelength" in band for band in tags.bands):
        values = np.asarray(
            [_number(band["wavelength"], source=source, key="wavelength") for band in tags.bands]
        )
        units = {band.get("wavelength_units") for band in tags.bands}
        unit = units.pop() if len(units) == 1 else None
        return wavelengths_to_nm(values, unit, source=source), "band metadata"
    if tags.imagery and all("central_wavelength_um" in band for band in tags.imagery):
        values = np.asarray(
            [
                _number(band["central_wavelength_um"], source=source, key="CENTRAL_WAVELENGTH_UM")
                for band in tags.imagery
            ]
        )
        return values * 1000.0, "band metadata CENTRAL_WAVELENGTH_UM"
    parsed = [_NUMBER_WITH_UNIT.match(d or "") for d in tags.descriptions]
    if parsed and all(parsed):
        values = np.asarray([float(m.group(1)) for m in parsed if m])
        units = {m.group(2).lower() for m in parsed if m}
        unit = units.pop() if len(units) == 1 else None
        return wavelengths_to_nm(values, unit or None, source=source), "band descriptions"
    return None


class ImageCubeReader:
    """An image cube format whose band wavelengths come from its GDAL tags.

    Args:
        name: Format name.
        description: One line for ``specsoil formats``.
        suffixes: Usual suffixes.
        recognise: Whether a file's first bytes and path are this format.
    """

    def __init__(
        self,
        name: str,
        description: str,
        suffixes: tuple[str, ...],
        recognise: Callable[[bytes, Path], bool],
    ) -> None:
        self.name = name
        self.description = description
        self.suffixes = suffixes
        self._recognise = recognise

    def sniff(self, head: bytes, path: Path) -> bool:
        """True when the file looks like this format."""
        return self._recognise(head, path)

    def band_wavelengths(self, tags: ImageTags) -> tuple[NDArray[np.float64], str] | None:
        """Band centres in nm and where they came from (see :func:`wavelengths_from_tags`)."""
        return wavelengths_from_tags(tags)


def _is_tiff(head: bytes, path: Path) -> bool:
    return head[:4] in _TIFF_MAGIC


def _is_envi(head: bytes, path: Path) -> bool:
    """An ENVI header, or a data file beside one (GDAL opens the data file)."""
    if head.startswith(b"ENVI"):
        return path.suffix.lower() == ".hdr"
    stem = path.with_suffix("") if path.suffix.lower() in _ENVI_DATA_SUFFIXES else path
    return (
        any(candidate.is_file() for candidate in (stem.with_suffix(".hdr"), Path(f"{path}.hdr")))
        and path.suffix.lower() != ".sli"
    )


def image_band_wavelengths(path: Path, tags: ImageTags) -> tuple[NDArray[np.float64], str] | None:
    """Band wavelengths of the cube at ``path`` by its registered image reader.

    Any raster GDAL opens has the same tags, so a file no image reader claims is read by the
    same rules.
    """
    reader = image_reader_for(path) if path.is_file() else None
    if reader is None:
        return wavelengths_from_tags(tags)
    return reader.band_wavelengths(tags)


register_reader(
    ImageCubeReader(
        "envi-image",
        "image cube (map-image): ENVI data file with its .hdr; wavelengths from the header",
        (".img", ".hdr", ".dat", ".bsq", ".bil", ".bip"),
        _is_envi,
    )
)
register_reader(
    ImageCubeReader(
        "geotiff",
        "image cube (map-image): GeoTIFF; wavelengths from band metadata or descriptions",
        (".tif", ".tiff"),
        _is_tiff,
    )
)
