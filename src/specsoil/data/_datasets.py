"""The real soil spectral datasets shipped inside the package."""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from specsoil._errors import SpecsoilError
from specsoil.data._readers import read_spectra
from specsoil.data._table import SPECTRA_KINDS, SpectraKind, SpectraTable

DEFAULT_DATASET = "geeves"

_REGISTRY = "datasets.json"


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    """What a bundled dataset holds and where it comes from.

    Attributes:
        name: Short name passed to :func:`load_dataset` (and to ``--data`` on the CLI).
        title: One-line title.
        description: A few sentences on the soils, instrument and lab values.
        n_samples: Number of spectra.
        wavelength_min: First band in nm.
        wavelength_max: Last band in nm.
        wavelength_step: Band spacing in nm.
        spectra_kind: Kind of the stored values (declared, not detected, when loading).
        targets: The lab-value columns meant as modelling targets.
        split_column: Column holding a predefined calibration (1) / validation (0) split,
            or ``None``.
        citation: What to cite when using the data.
        licence: Licence of the data; the full text ships beside the file.
        source: Where the file was taken from.
    """

    name: str
    title: str
    description: str
    n_samples: int
    wavelength_min: float
    wavelength_max: float
    wavelength_step: float
    spectra_kind: SpectraKind
    targets: tuple[str, ...]
    split_column: str | None
    citation: str
    licence: str
    source: str


@functools.cache
def _registry() -> dict[str, tuple[DatasetInfo, str]]:
    folder = resources.files("specsoil.data").joinpath("datasets")
    entries: dict[str, dict[str, Any]] = json.loads(
        folder.joinpath(_REGISTRY).read_text(encoding="utf-8")
    )
    registry = {}
    for name, entry in entries.items():
        fields = {k: v for k, v in entry.items() if k != "file"}
        if fields["spectra_kind"] not in SPECTRA_KINDS:
            raise ValueError(f"{_REGISTRY}: {name} has unknown kind {fields['spectra_kind']!r}")
        fields["targets"] = tuple(fields["targets"])
        for key in ("wavelength_min", "wavelength_max", "wavelength_step"):
            fields[key] = float(fields[key])
        registry[name] = (DatasetInfo(name=name, **fields), str(entry["file"]))
    return registry


def list_datasets() -> list[DatasetInfo]:
    """Describe the bundled datasets, the default one first.

    Returns:
        One :class:`DatasetInfo` per dataset.
    """
    return [info for info, _ in _registry().values()]


def _info(name: str) -> tuple[DatasetInfo, str]:
    registry = _registry()
    if name not in registry:
        raise SpecsoilError(f"unknown dataset {name!r}; available: {sorted(registry)}")
    return registry[name]


@functools.cache
def _load(name: str) -> SpectraTable:
    info, file = _info(name)
    resource = resources.files("specsoil.data").joinpath("datasets", *file.split("/"))
    with resources.as_file(resource) as path:
        table = read_spectra(path, spectra_kind=info.spectra_kind)
    return dataclasses.replace(
        table, source=f"dataset:{name}", kind_reason="declared by the bundled dataset"
    )


def load_dataset(name: str = DEFAULT_DATASET) -> SpectraTable:
    """Load a bundled dataset as a table of absorbance spectra.

    The spectra kind comes from the registry, not from detection. Each call returns its own
    copy, so changing one table in place leaves later loads untouched.

    Args:
        name: A name from :func:`list_datasets`, e.g. ``"geeves"`` or ``"nirsoil"``.

    Returns:
        The table; ``source`` is ``"dataset:<name>"``.

    Raises:
        SpecsoilError: If no dataset has that name.
    """
    table = _load(name)
    return dataclasses.replace(
        table,
        X=table.X.copy(),
        wavelengths=table.wavelengths.copy(),
        metadata=table.metadata.copy(),
    )
