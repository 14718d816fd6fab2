"""Typed run configuration, read from YAML at the CLI boundary.

Only ``specsoil.cli`` reads configs; library code takes explicit keyword arguments.

Example YAML::

    targets: [clay_pct, total_carbon_pct]
    folds: 10
    seed: 0
    models:
      plsr:                       # overrides the default preprocessing of the plsr recipe
        preprocessing:
          - {name: resample, step: 10, method: mean}
          - {name: savgol, window_length: 11, polyorder: 2, deriv: 1}
        params: {max_components: 20}
      svr_snv:                    # a new named variant of an existing recipe
        recipe: svr
        preprocessing: [{name: resample, step: 10, method: mean}, {name: snv}]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from specsoil._errors import SpecsoilError


class ModelConfig(BaseModel):
    """One named model: a recipe plus optional preprocessing and estimator overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recipe: str | None = None
    preprocessing: list[dict[str, Any]] | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class RunConfig(BaseModel):
    """Settings shared by ``cv`` and ``train``; command-line flags take precedence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: str | None = None
    targets: list[str] = Field(default_factory=list)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    spectra_kind: str | None = None
    drop_invalid: bool = False
    folds: PositiveInt | None = None
    fold_column: str | None = None
    group_column: str | None = None
    train_column: str | None = None
    seed: int = 0
    # Scan files as data (read_scans): the lab sheet and how samples are formed.
    lab: str | None = None
    id_column: str | None = None
    id_from_filename: str | None = None
    replicates: Literal["mean", "median", "none"] = "mean"


def load_config(path: str | Path | None) -> RunConfig:
    """Read and validate a YAML config; ``None`` gives the defaults.

    Raises:
        SpecsoilError: If the file is missing, is not YAML, or has unknown or mistyped keys.
    """
    if path is None:
        return RunConfig()
    file = Path(path)
    if not file.is_file():
        raise SpecsoilError(f"{file}: no such config file")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SpecsoilError(f"{file}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise SpecsoilError(f"{file}: expected a mapping of settings at the top level")
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SpecsoilError(f"{file}: {where}: {first['msg']}") from None
