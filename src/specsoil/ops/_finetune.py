"""The ``finetune`` operation: adapt a saved CNN model to local spectra and save it complete."""

from __future__ import annotations

from dataclasses import dataclass

from specsoil import _output_plan
from specsoil._errors import SpecsoilError
from specsoil.models import FinetuneBatchNorm, FinetuneStrategy, SpectralModel, finetune_model
from specsoil.ops._inputs import (
    DataSource,
    OutputRequest,
    load_source,
    resolve_targets,
    written_files,
)
from specsoil.ops._progress import ProgressCallback, Stages
from specsoil.ops._train import TrainOutcome, save_model_folder

_STAGES = ("load", "fit", "save")


class FinetuneRequest(OutputRequest):
    """The base model, the local spectra, how to fine-tune, and the new model folder.

    Attributes:
        base: A CNN model folder written by train.
        source: The local spectra with lab values.
        targets: Property columns; empty keeps the base model's (and its output layer).
        strategy: ``head``, ``partial`` or ``full``: which weights are trained.
        epochs: Fine-tuning epochs; None is the base model's.
        lr: Learning rate of the head; None is the base model's.
        batchnorm: ``frozen`` or ``adapt`` BatchNorm statistics.
        replay: Spectra with lab values to fine-tune on together with the local ones (read
            with ``source``'s table settings).
        local_share: With ``replay``, the share of each epoch made of local spectra.
        name: Name of the new model; None is ``<base name>-finetuned``.
        seed: Random seed.
    """

    base: str
    source: DataSource
    targets: tuple[str, ...] = ()
    strategy: FinetuneStrategy = "partial"
    epochs: int | None = None
    lr: float | None = None
    batchnorm: FinetuneBatchNorm = "frozen"
    replay: str | None = None
    local_share: float = 0.5
    name: str | None = None
    seed: int = 0


@dataclass(frozen=True)
class FinetuneOutcome(TrainOutcome):
    """The fine-tuned model and its folder (see :class:`TrainOutcome`)."""


def run_finetune(
    request: FinetuneRequest, *, progress: ProgressCallback | None = None
) -> FinetuneOutcome:
    """Fine-tune the base model on the local spectra and save the new folder atomically.

    Args:
        request: What to fine-tune; the output folder is checked before any work.
        progress: Called after loading, fine-tuning and saving.

    Raises:
        SpecsoilError: For bad input or an output that may not be written.
    """
    stages = Stages(progress, _STAGES)
    if request.epochs is not None and request.epochs < 1:
        raise SpecsoilError(f"--epochs must be at least 1; got {request.epochs}")
    if request.lr is not None and not request.lr > 0:
        raise SpecsoilError(f"--lr must be positive; got {request.lr}")
    if not 0.0 < request.local_share < 1.0:
        raise SpecsoilError(f"--local-share must be between 0 and 1; got {request.local_share}")
    if request.source.data is None:
        raise SpecsoilError("say which local spectra to fine-tune on with --data")
    out = _output_plan.plan_output_folder(
        request.out,
        kind="model",
        inputs=[request.base, request.source.data, request.replay, *request.other_inputs],
        overwrite=request.overwrite,
    )
    base = SpectralModel.load(request.base)
    loaded = load_source(request.source)
    # Without targets the base model's are kept, and so is its output layer.
    targets = resolve_targets(loaded, request.targets or base.targets)
    replay = None
    if request.replay is not None:
        # The replay table is read like the local one, but it is a table, not scan files.
        settings = request.source.model_dump(
            include={"spectra_kind", "drop_invalid", "spectral_columns", "censored"}
        )
        replay = load_source(DataSource(data=request.replay, **settings)).table
    stages.finished("load")
    model = finetune_model(
        base,
        loaded.table,
        targets,
        strategy=request.strategy,
        max_epochs=request.epochs,
        lr=request.lr,
        random_state=request.seed,
        name=request.name,
        batchnorm=request.batchnorm,
        replay=replay,
        local_share=request.local_share,
    )
    stages.finished("fit")
    resolved = {
        "base": str(request.base),
        "data": loaded.table.source,
        "targets": targets,
        "strategy": request.strategy,
        "epochs": request.epochs,
        "lr": request.lr,
        "seed": request.seed,
        "batchnorm": request.batchnorm,
        "replay": None if replay is None else replay.source,
        "local_share": request.local_share if replay is not None else None,
    }
    save_model_folder(model, out, loaded.table, resolved)
    stages.finished("save")
    head = "new output layer" if model.training["finetune"]["new_head"] else "base output layer"
    summary = (
        f"fine-tuned {base.name!r} ({base.recipe}, {base.training.get('n_samples', '?')} "
        f"samples) on {loaded.table.n_samples} local samples for {', '.join(targets)} "
        f"({request.strategy}, {head}"
        + (f", replaying {replay.n_samples} spectra" if replay is not None else "")
        + ")"
    )
    return FinetuneOutcome(out=out, files=written_files(out), model=model, summary=summary)
