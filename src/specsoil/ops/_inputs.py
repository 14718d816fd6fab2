"""What every operation starts from: typed requests, data sources, targets and model specs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pandas.api.types import is_numeric_dtype
from pydantic import BaseModel, ConfigDict

from specsoil._errors import SpecsoilError
from specsoil.config import ModelConfig
from specsoil.data import CensoredPolicy
from specsoil.models import list_recipes, recipe_preprocessing

if TYPE_CHECKING:
    from specsoil.cli._common import LoadedData

# Fewer lab values than this cannot both calibrate and validate a model.
MIN_TARGET_VALUES = 5


class Request(BaseModel):
    """Base of every operation request: immutable, and unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OutputRequest(Request):
    """A request that writes one output (a file or a folder the operation owns).

    Attributes:
        out: Where to write, as the user gave it (messages repeat it as given).
        overwrite: Replace an earlier output of the same kind (never other files).
        other_inputs: Files the caller read besides the data (a config file): the output
            may not replace them or hold them.
    """

    out: str
    overwrite: bool = False
    other_inputs: tuple[str, ...] = ()


class DataSource(Request):
    """Spectra to read: a table, scan files or a bundled dataset, and how to read them.

    Attributes:
        data: A table (CSV/TSV/Parquet), scan files (folder, glob, zip, instrument file), a
            spectral library URL (``sqlite:///…``, ``postgresql://…``) or a bundled dataset
            name; None is the default bundled dataset.
        spectra_kind: What the spectral values are; detected from them when None.
        drop_invalid: Drop unreadable spectral rows (counted) instead of stopping.
        spectral_columns: Regular expression naming the spectral columns of a table.
        censored: What lab values written ``<x``/``>x`` become.
        lab: Scan files only: lab sheet to join.
        id_column: Scan files only: the lab sheet's sample id column.
        id_from_filename: Scan files only: regex picking the sample id from a file name.
        replicates: Scan files only: how a sample's replicate scans are combined.
        instrument: Library URL only: keep these instruments' scans.
        properties: Library URL only: keep these properties' lab values.
        where: Library URL only: conditions on sample metadata (``site=A``, ``clay>10``).
    """

    data: str | None = None
    spectra_kind: str | None = None
    drop_invalid: bool = False
    spectral_columns: str | None = None
    censored: CensoredPolicy = "missing"
    lab: str | None = None
    id_column: str | None = None
    id_from_filename: str | None = None
    replicates: Literal["mean", "median", "none"] = "mean"
    instrument: tuple[str, ...] | None = None
    properties: tuple[str, ...] | None = None
    where: tuple[str, ...] | None = None


def load_source(source: DataSource) -> LoadedData:
    """Read ``source``; the one place operations read data (tables, scans, datasets).

    Raises:
        SpecsoilError: If the data cannot be read, naming the file, row and column.
    """
    # The loading dispatch still lives with the CLI flags; it moves to specsoil.data, and
    # then only these imports change.
    from specsoil.cli._common import load_data
    from specsoil.cli._scan_flags import ScanOptions

    scans = ScanOptions(
        lab=source.lab,
        id_column=source.id_column,
        id_from_filename=source.id_from_filename,
        replicates=source.replicates,
    )
    return load_data(
        source.data,
        spectra_kind=source.spectra_kind,
        drop_invalid=source.drop_invalid,
        spectral_columns=source.spectral_columns,
        censored=source.censored,
        scans=scans,
        instrument=source.instrument,
        properties=source.properties,
        where=source.where,
    )


def resolve_targets(loaded: LoadedData, requested: Sequence[str] | None) -> list[str]:
    """The requested targets, else the dataset's; checked against the table.

    Raises:
        SpecsoilError: If none is known, one is missing, not a lab value, or has fewer
            than :data:`MIN_TARGET_VALUES` values.
    """
    targets = list(requested or loaded.default_targets)
    table = loaded.table
    if not targets:
        raise SpecsoilError(
            f"{table.source}: say which property to model with --target; "
            f"numeric columns: {table.target_choices()}"
        )
    available = table.numeric_columns()
    for name in targets:
        if name not in table.metadata.columns:
            raise SpecsoilError(
                f"{table.source}: unknown target {name!r}; available: {table.target_choices()}"
            )
        if name not in available and is_numeric_dtype(table.metadata[name]):
            raise SpecsoilError(
                f"{table.source}: {name!r} is an identifier, not a lab value; available: "
                f"{table.target_choices()}"
            )
    # Fails early, naming the row and the value, on a column holding text.
    values = table.targets(targets)
    counts = np.isfinite(values).sum(axis=0)
    for name, count in zip(targets, counts, strict=True):
        if count < MIN_TARGET_VALUES:
            raise SpecsoilError(
                f"{table.source}: target {name!r} has {count} lab values; at least "
                f"{MIN_TARGET_VALUES} are needed to calibrate a model"
            )
    return targets


@dataclass(frozen=True)
class ModelSpec:
    """A model to build: its name, recipe, preprocessing steps and estimator overrides."""

    name: str
    recipe: str
    preprocessing: list[dict[str, Any]]
    params: dict[str, Any]


def resolve_models(names: Sequence[str], variants: Mapping[str, ModelConfig]) -> list[ModelSpec]:
    """Turn model names (recipes or named ``variants``) into specs; unknown names list the choices.

    Raises:
        SpecsoilError: If a name is neither a recipe nor a variant of one.
    """
    recipes = list_recipes()
    specs = []
    for name in names:
        entry = variants.get(name)
        recipe = (entry.recipe if entry and entry.recipe else None) or name
        if recipe not in recipes:
            known = sorted(set(recipes) | set(variants))
            raise SpecsoilError(f"unknown model {name!r}; available models: {known}")
        steps = entry.preprocessing if entry and entry.preprocessing is not None else None
        specs.append(
            ModelSpec(
                name=name,
                recipe=recipe,
                preprocessing=[
                    dict(s) for s in (steps if steps is not None else recipe_preprocessing(recipe))
                ],
                params=dict(entry.params) if entry else {},
            )
        )
    return specs


def written_files(folder: Path) -> tuple[Path, ...]:
    """Every file of an output folder, sorted: what an operation reports it wrote."""
    return tuple(sorted(p for p in folder.rglob("*") if p.is_file()))
