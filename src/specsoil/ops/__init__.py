"""Operations: cv, train, predict, map, explain and finetune as library calls.

Each operation takes a typed, immutable request (a pydantic model that refuses unknown
fields, so a web form or a JSON body validates against it), checks its output before any
work, writes that output atomically, and returns a result naming the files it wrote. The
command line and the web service are thin front ends over these functions; neither
writes files of its own.

Example:
    >>> from specsoil.ops import DataSource, TrainRequest, run_train
    >>> outcome = run_train(  # doctest: +SKIP
    ...     TrainRequest(source=DataSource(data="geeves"), targets=("clay_pct",), out="clay")
    ... )
    >>> outcome.files  # doctest: +SKIP
"""

from specsoil.ops._cv import CVOutcome, CVRequest, run_cv
from specsoil.ops._explain import ExplainOutcome, ExplainRequest, run_explain
from specsoil.ops._finetune import FinetuneOutcome, FinetuneRequest, run_finetune
from specsoil.ops._inputs import (
    MIN_TARGET_VALUES,
    DataSource,
    LoadedData,
    ModelSpec,
    OutputRequest,
    describe_table,
    load_data,
    load_source,
    resolve_models,
    resolve_targets,
)
from specsoil.ops._map import MapOutcome, MapRequest, run_map
from specsoil.ops._predict import PredictOutcome, PredictRequest, run_predict
from specsoil.ops._progress import OperationCancelled, ProgressCallback, ProgressUpdate
from specsoil.ops._train import TrainOutcome, TrainRequest, run_train, save_model_folder

__all__ = [
    "MIN_TARGET_VALUES",
    "CVOutcome",
    "CVRequest",
    "DataSource",
    "ExplainOutcome",
    "ExplainRequest",
    "FinetuneOutcome",
    "FinetuneRequest",
    "LoadedData",
    "MapOutcome",
    "MapRequest",
    "ModelSpec",
    "OperationCancelled",
    "OutputRequest",
    "PredictOutcome",
    "PredictRequest",
    "ProgressCallback",
    "ProgressUpdate",
    "TrainOutcome",
    "TrainRequest",
    "describe_table",
    "load_data",
    "load_source",
    "resolve_models",
    "resolve_targets",
    "run_cv",
    "run_explain",
    "run_finetune",
    "run_map",
    "run_predict",
    "run_train",
    "save_model_folder",
]
