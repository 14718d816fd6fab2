"""What every operation starts from: typed requests, data sources, targets and model specs."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pandas.api.types import is_numeric_dtype
from pydantic import BaseModel, ConfigDict

import specsoil.library  # noqa: F401  (registers the sqlite:// and postgresql:// data sources)
from specsoil._errors import SpecsoilError
from specsoil.config import ModelConfig
from specsoil.data import (
    CensoredPolicy,
    DataRead,
    ScanOptions,
    SpectraKind,
    SpectraTable,
    log_scan_report,
    read_data,
)
from specsoil.models import list_recipes, recipe_preprocessing

logger = logging.getLogger(__name__)

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
        format: A registered reader name (``specsoil formats``) instead of recognition.
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
    format: str | None = None


def load_source(source: DataSource) -> LoadedData:
    """Read ``source``; the one place operations read data (tables, scans, libraries).

    Raises:
        SpecsoilError: If the data cannot be read, naming the file, row and column.
    """
    return load_data(
        source.data,
        spectra_kind=source.spectra_kind,
        drop_invalid=source.drop_invalid,
        spectral_columns=source.spectral_columns,
        censored=source.censored,
        scans=ScanOptions(
            lab=source.lab,
            id_column=source.id_column,
            id_from_filename=source.id_from_filename,
            replicates=source.replicates,
        ),
        format=source.format,
        instrument=source.instrument,
        properties=source.properties,
        where=source.where,
    )


@dataclass(frozen=True)
class LoadedData:
    """A table plus the targets and split column its source suggests."""

    table: SpectraTable
    default_targets: tuple[str, ...] = ()
    split_column: str | None = None
    dataset: str | None = None
    notes: list[str] = field(default_factory=list)


def load_data(
    data: str | None,
    *,
    spectra_kind: str | None = None,
    drop_invalid: bool = False,
    spectral_columns: str | None = None,
    censored: CensoredPolicy = "missing",
    scans: ScanOptions | None = None,
    format: str | None = None,
    instrument: Sequence[str] | None = None,
    properties: Sequence[str] | None = None,
    where: Sequence[str] | None = None,
) -> LoadedData:
    """Read ``data`` with :func:`specsoil.data.read_data` and log what was read.

    ``None`` means the default bundled dataset; see ``read_data`` for the sources taken
    (a spectral library URL among them, with its filters).
    """
    kind: SpectraKind | None = spectra_kind  # type: ignore[assignment]
    read = read_data(
        data,
        spectra_kind=kind,
        drop_invalid=drop_invalid,
        spectral_columns=spectral_columns,
        censored=censored,
        format=format,
        scans=scans,
        instrument=instrument,
        properties=properties,
        where=where,
    )
    loaded = loaded_data(read)
    describe_table(loaded.table)
    return loaded


def loaded_data(read: DataRead) -> LoadedData:
    """What the commands need of a :class:`DataRead`, its scan report logged."""
    if read.scan_report is not None:
        log_scan_report(read.scan_report)
    info = read.dataset
    if info is None:
        return LoadedData(read.table, notes=list(read.notes))
    logger.info("data: bundled dataset %r (%s)", info.name, info.title)
    return LoadedData(read.table, tuple(info.targets), info.split_column, info.name)


def describe_table(table: SpectraTable) -> None:
    """Log what was read, including how the spectra kind was decided."""
    w = table.wavelengths
    logger.info(
        "spectra: %d samples x %d bands, %g-%g nm; %s (%s)",
        table.n_samples,
        w.size,
        w[0],
        w[-1],
        table.spectra_kind,
        f"detected: {table.kind_reason}; override with --spectra-kind"
        if table.kind_detected
        else table.kind_reason,
    )
    if table.lab_value_counts:
        logger.info("lab values: %s", describe_lab_values(table))


def describe_lab_values(table: SpectraTable) -> str:
    """One line: per column, the missing and censored lab values and what was done with them."""
    words = {"missing": "missing", "below": "censored <x", "above": "censored >x"}
    parts = [
        f"{name} " + ", ".join(f"{count} {words[key]}" for key, count in counts.items())
        for name, counts in table.lab_value_counts.items()
    ]
    censored = any(set(c) & {"below", "above"} for c in table.lab_value_counts.values())
    policy = f" (censored values: {table.censored}; see --censored)" if censored else ""
    return "; ".join(parts) + policy


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
