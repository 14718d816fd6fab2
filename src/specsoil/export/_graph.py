"""A fitted CNN pipeline rebuilt as one torch module: fixed preprocessing, networks, units.

Imports torch at module level, so only :func:`specsoil.export.export_onnx` imports it (on
first use). Each fitted preprocessing step becomes a module with constant buffers that
computes what the step's ``transform`` computes, in float64 as the step does; the array is
cast to float32 where the estimator casts it (``CNNRegressor`` feeds float32 to the nets).
Linear steps (resampling, Savitzky-Golay, detrending, splice correction, the STFT before
its magnitude) are captured as the matrix their ``transform`` gives on the identity, so the
graph reproduces the step's own edge handling exactly, whatever it is.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from torch import nn

from specsoil._errors import SpecsoilError
from specsoil.models import ChainSelectCV
from specsoil.nets import STFT
from specsoil.preprocess import (
    AbsorbanceTransform,
    Detrend,
    MultiplicativeScatterCorrection,
    Resample,
    SavitzkyGolay,
    SpectralChannels,
    Spectrogram,
    SpliceCorrection,
    StandardNormalVariate,
)
from specsoil.train import CNNRegressor

# Rows of the identity pushed through a linear step at a time: bounds the memory of
# capturing a 4,200-band (LUCAS) resampling to a few MB per chunk.
_CAPTURE_CHUNK = 512
# How closely a captured matrix must reproduce the step on random spectra (relative to the
# output's magnitude): float64 round-off is ~1e-16, a nonlinear step misses by far more.
_LINEARITY_RTOL = 1e-9


def _buffer(values: NDArray[Any]) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64))


class AffineMap(nn.Module):
    """``x @ matrix + offset`` on (N, L_in) float64 spectra: any fitted linear step."""

    def __init__(self, matrix: NDArray[np.float64], offset: NDArray[np.float64]) -> None:
        super().__init__()
        self.register_buffer("matrix", _buffer(matrix))  # (L_in, L_out)
        self.register_buffer("offset", _buffer(offset))  # (L_out,)
        self.has_offset = bool(np.any(offset != 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, L_in) to (N, L_out)."""
        out = x @ self.get_buffer("matrix")
        return out + self.get_buffer("offset") if self.has_offset else out


class SNV(nn.Module):
    """:class:`StandardNormalVariate`: centre and scale each row; constant rows become 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Row-wise SNV of (N, L) float64 spectra, ddof=1 as in the transformer."""
        magnitude = x.abs().amax(dim=1, keepdim=True)
        centred = x - x.mean(dim=1, keepdim=True)
        std = torch.sqrt((centred * centred).sum(dim=1, keepdim=True) / (x.shape[1] - 1))
        # The transformer's flatness rule: spread at round-off level of the row's magnitude.
        flat = std <= 16 * float(np.finfo(np.float64).eps) * magnitude
        return torch.where(flat, torch.zeros_like(centred), centred / torch.where(flat, 1.0, std))


class MSC(nn.Module):
    """:class:`MultiplicativeScatterCorrection` against its fitted reference spectrum."""

    def __init__(self, reference: NDArray[np.float64]) -> None:
        super().__init__()
        centred = reference - reference.mean()
        self.register_buffer("centred_reference", _buffer(centred))
        self.reference_mean = float(reference.mean())
        self.norm = float(centred @ centred)
        self.peak = float(np.abs(centred).max())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - a) / b`` per row, slope 1 where it is at round-off level (as the step)."""
        row_means = x.mean(dim=1, keepdim=True)
        slope = (x - row_means) @ self.get_buffer("centred_reference").unsqueeze(1) / self.norm
        offset = row_means - slope * self.reference_mean
        flat = slope.abs() * self.peak <= 1e-12 * x.abs().amax(dim=1, keepdim=True)
        return (x - offset) / torch.where(flat, 1.0, slope)


class Standardize(nn.Module):
    """``(x - mean) / scale`` with fitted, broadcastable statistics (scaler or channels)."""

    def __init__(self, mean: NDArray[np.float64] | None, scale: NDArray[np.float64] | None) -> None:
        super().__init__()
        self.centre = mean is not None
        self.divide = scale is not None
        self.register_buffer("mean", _buffer(mean if mean is not None else np.zeros(1)))
        self.register_buffer("scale", _buffer(scale if scale is not None else np.ones(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise with the fitted statistics."""
        if self.centre:
            x = x - self.get_buffer("mean")
        if self.divide:
            x = x / self.get_buffer("scale")
        return x


class Channels(nn.Module):
    """:class:`SpectralChannels`: (N, L) to standardised (absorbance, derivative, SNV)."""

    def __init__(self, derivative: AffineMap, standardize: Standardize) -> None:
        super().__init__()
        self.derivative = derivative
        self.snv = SNV()
        self.standardize = standardize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return (N, 3, L) float32, as the transformer does."""
        channels = torch.stack([x, self.derivative(x), self.snv(x)], dim=1)  # (N, 3, L)
        standardised: torch.Tensor = self.standardize(channels)
        return standardised.to(torch.float32)


class MagnitudeSTFT(nn.Module):
    """``|Z|`` or ``log(|Z| + eps)`` of a linear complex transform Z (an STFT) of each row.

    ``real`` and ``imag`` are (L, F * T) matrices: the transform of the identity. The
    output keeps x's leading axes, plus a channel axis when ``add_channel`` (the
    :class:`Spectrogram` step maps (N, L) to (N, 1, F, T)).
    """

    def __init__(
        self,
        real: NDArray[np.float64],
        imag: NDArray[np.float64],
        shape: tuple[int, int],
        *,
        log: bool,
        eps: float,
        add_channel: bool = False,
    ) -> None:
        super().__init__()
        self.add_channel = add_channel
        self.register_buffer("real", _buffer(real))
        self.register_buffer("imag", _buffer(imag))
        self.shape = shape
        self.log = log
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (..., L) to (..., F, T) in x's dtype, computing in float64."""
        if self.add_channel:
            x = x.unsqueeze(1)  # (N, 1, L)
        lead = x.shape[:-1]
        flat = x.reshape(-1, x.shape[-1]).to(torch.float64)  # (rows, L)
        re, im = flat @ self.get_buffer("real"), flat @ self.get_buffer("imag")
        magnitude = torch.sqrt(re * re + im * im)
        if self.log:
            magnitude = torch.log(magnitude + self.eps)
        return magnitude.reshape(*lead, *self.shape).to(x.dtype)


class Members(nn.Module):
    """The network(s) of a :class:`CNNRegressor`: ensemble mean, back in target units."""

    def __init__(
        self,
        nets: Sequence[nn.Module],
        target_mean: NDArray[np.float64],
        target_scale: NDArray[np.float64],
    ) -> None:
        super().__init__()
        self.nets = nn.ModuleList(nets)
        self.register_buffer("target_mean", _buffer(target_mean))
        self.register_buffer("target_scale", _buffer(target_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, L), (N, C, L) or (N, 1, F, T) network input to (N, n_targets) float64."""
        if x.ndim == 2:
            x = x.unsqueeze(1)  # (N, 1, L): one input channel, as network_input does
        x = x.to(torch.float32)
        # Each member's output in float64 before averaging, as CNNRegressor._forward.
        outputs = torch.stack([net(x).to(torch.float64) for net in self.nets])  # (M, N, k)
        return outputs.mean(dim=0) * self.get_buffer("target_scale") + self.get_buffer(
            "target_mean"
        )


class ExportedModel(nn.Module):
    """Raw float32 spectra on the model's grid (N, L) to float32 properties (N, n_targets).

    ``steps`` are the preprocessing modules (float64); ``head`` maps their output to the
    properties in float64: :class:`Members` for a CNN, an :class:`AffineMap` for a model
    that is linear as a whole (PLSR with linear preprocessing).
    """

    def __init__(self, steps: Sequence[nn.Module], head: nn.Module) -> None:
        super().__init__()
        self.steps = nn.ModuleList(steps)
        self.head = head

    def forward(self, spectra: torch.Tensor) -> torch.Tensor:
        """Run the preprocessing, the networks (or linear map) and return float32."""
        x = spectra.to(torch.float64)
        for step in self.steps:
            x = step(x)
        properties: torch.Tensor = self.head(x)
        return properties.to(torch.float32)


class PerTarget(nn.Module):
    """Each target's own preprocessing chain and linear head (a chain chosen per target)."""

    def __init__(self, branches: Sequence[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, L) float64 to (N, n_targets) float64, one column per branch."""
        return torch.cat([branch(x) for branch in self.branches], dim=1)


def _capture_affine(
    transform: Callable[[NDArray[np.float64]], NDArray[Any]], n_features: int, label: str
) -> AffineMap:
    """The matrix and offset of a linear step, checked on random spectra.

    Raises:
        SpecsoilError: If ``transform`` is not affine (checked on three calls first, so a
            slow nonlinear model is rejected before the identity is pushed through it).
    """
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. degenerate rows of the identity
        first, second = rng.normal(1.0, 0.5, size=(2, 1, n_features))
        zero = np.zeros((1, n_features))
        values = [np.asarray(transform(x), dtype=np.float64) for x in (zero, first, second)]
        together = np.asarray(transform(first + second), dtype=np.float64)
        _check_close(together + values[0], values[1] + values[2], label)
        offset = values[0][0]
        blocks = []
        for start in range(0, n_features, _CAPTURE_CHUNK):
            rows = np.eye(n_features)[start : start + _CAPTURE_CHUNK]
            blocks.append(np.asarray(transform(rows), dtype=np.float64) - offset)
        matrix = np.concatenate(blocks, axis=0)  # (L_in, L_out)
        probe = rng.normal(1.0, 0.5, size=(4, n_features))
        expected = np.asarray(transform(probe), dtype=np.float64)
    if matrix.ndim != 2 or expected.shape != (4, matrix.shape[1]):
        raise SpecsoilError(f"step {label!r} does not map spectra to spectra; cannot export it")
    _check_close(probe @ matrix + offset, expected, label)
    return AffineMap(matrix, offset)


def _check_close(got: NDArray[np.float64], expected: NDArray[np.float64], label: str) -> None:
    """Raise unless ``got`` matches ``expected`` to float64 round-off (linearity checks)."""
    error = float(np.abs(got - expected).max())
    if not error <= _LINEARITY_RTOL * max(1.0, float(np.abs(expected).max())):
        raise SpecsoilError(
            f"step {label!r} is not linear (off by {error:.3g} on test spectra); cannot "
            "export it as a fixed matrix"
        )


def _spectrogram(step: Spectrogram, n_features: int) -> MagnitudeSTFT:
    """The STFT of :class:`Spectrogram` as two matrices, captured with scipy on the identity."""
    coefficients = step.stft(np.eye(n_features))  # (L, F, T), complex
    shape = (int(coefficients.shape[1]), int(coefficients.shape[2]))
    flat = coefficients.reshape(n_features, -1)  # (L, F * T)
    return MagnitudeSTFT(
        flat.real, flat.imag, shape, log=bool(step.log), eps=float(step.eps), add_channel=True
    )


def _stft_layer(layer: STFT, n_bands: int) -> MagnitudeSTFT:
    """A network's :class:`specsoil.nets.STFT` layer as matrices (torch.stft exports poorly)."""
    window = layer.get_buffer("window").double()
    padded = torch.nn.functional.pad(torch.eye(n_bands, dtype=torch.float64), layer.pads)
    coefficients = (
        torch.stft(
            padded,
            n_fft=layer.nperseg,
            hop_length=layer.hop,
            window=window,
            center=False,
            onesided=True,
            return_complex=True,
        ).numpy()
        / layer.scale
    )  # (L, F, T): the layer's own transform of the identity
    flat = coefficients.reshape(n_bands, -1)
    shape = (layer.n_frequencies, layer.n_frames)
    return MagnitudeSTFT(flat.real, flat.imag, shape, log=layer.log, eps=layer.eps)


def _portable_net(net: nn.Module) -> nn.Module:
    """A copy of ``net`` in eval mode on the CPU, its STFT layers swapped for matrices."""
    copied = copy.deepcopy(net).cpu().eval()
    for name, module in list(copied.named_modules()):
        if isinstance(module, STFT):
            parent_name, _, child = name.rpartition(".")
            parent = copied.get_submodule(parent_name) if parent_name else copied
            # n_bands: the pads were set so that (L + pads) frames exactly; undo that.
            used = (module.n_frames - 1) * module.hop + module.nperseg
            n_bands = used - sum(module.pads)
            setattr(parent, child, _stft_layer(module, n_bands))
    return copied


def _convert_step(label: str, step: Any, n_features: int) -> nn.Module | None:
    """The module computing fitted step ``step``; None for an identity step."""
    if step is None or step == "passthrough":
        return None
    if isinstance(step, FunctionTransformer) and step.func is None:
        return None
    if isinstance(step, AbsorbanceTransform) and step.kind == "absorbance":
        return None
    # Splice correction shifts each outer segment by a linear extrapolation of the middle
    # one's bands: linear in the spectrum, so it is captured like the others.
    if isinstance(step, Resample | SavitzkyGolay | Detrend | SpliceCorrection):
        return _capture_affine(step.transform, n_features, label)
    if isinstance(step, StandardNormalVariate):
        return SNV()
    if isinstance(step, MultiplicativeScatterCorrection):
        return MSC(np.asarray(step.reference_, dtype=np.float64))
    if isinstance(step, StandardScaler):
        # The flags, not the attributes, decide: mean_ is fitted even when with_mean=False.
        return Standardize(
            step.mean_ if step.with_mean else None, step.scale_ if step.with_std else None
        )
    if isinstance(step, SpectralChannels):
        derivative = SavitzkyGolay(int(step.window_length), int(step.polyorder), deriv=1)
        derivative.fit(np.zeros((1, n_features)))
        return Channels(
            _capture_affine(derivative.transform, n_features, f"{label} derivative"),
            Standardize(step.mean_, step.scale_),
        )
    if isinstance(step, Spectrogram):
        return _spectrogram(step, n_features)
    raise SpecsoilError(
        f"preprocessing step {label!r} ({type(step).__name__}) cannot be exported to ONNX; "
        "exportable steps: resample, savgol, detrend, splice_correction, snv, msc, center, "
        "autoscale, SpectralChannels, Spectrogram and absorbance input"
    )


def _convert_steps(
    steps: Sequence[tuple[str, Any]], n_features: int
) -> tuple[list[nn.Module], int]:
    """The modules of fitted ``(label, step)`` pairs, and the width of their output."""
    modules: list[nn.Module] = []
    width = n_features
    for label, step in steps:
        module = _convert_step(label, step, width)
        if module is not None:
            modules.append(module)
        if isinstance(step, Resample):  # the only 2-D step that changes the width
            width = int(step.wavelengths_out_.size)
    return modules, width


def _flatten(pipeline: Pipeline, prefix: str = "") -> list[tuple[str, Any]]:
    """The steps of ``pipeline`` with nested pipelines spliced in, labels joined by '/'."""
    steps: list[tuple[str, Any]] = []
    for label, step in pipeline.steps:
        if isinstance(step, Pipeline):
            steps.extend(_flatten(step, f"{prefix}{label}/"))
        else:
            steps.append((f"{prefix}{label}", step))
    return steps


def build_module(pipeline: Pipeline, n_features: int, *, model_name: str) -> ExportedModel:
    """The torch module computing ``pipeline.predict`` on (N, n_features) float32 spectra.

    Args:
        pipeline: A fitted pipeline: preprocessing steps, then a :class:`CNNRegressor`
            (possibly inside nested pipelines, as the ``cnn1d`` and ``cnn2d`` recipes do),
            or any pipeline whose ``predict`` is affine in the spectra (``plsr``).
        n_features: Number of bands of the input (the model's grid).
        model_name: For error messages.

    Returns:
        The module in eval mode, on the CPU.

    Raises:
        SpecsoilError: If the model is neither a fitted CNN nor linear, or a step has no
            exportable equivalent.
    """
    *preprocessing, (estimator_label, estimator) = _flatten(pipeline)
    if isinstance(estimator, ChainSelectCV):
        return _chain_model(preprocessing, n_features, model_name, estimator_label, estimator)
    if not isinstance(estimator, CNNRegressor):
        return _linear_model(pipeline, n_features, model_name, estimator_label, estimator)
    if not hasattr(estimator, "module_"):
        raise SpecsoilError(f"model {model_name!r}: the CNN is not fitted; nothing to export")
    modules, _ = _convert_steps(preprocessing, n_features)
    members = Members(
        [_portable_net(net) for net in estimator._members()],
        np.asarray(estimator.target_mean_, dtype=np.float64),
        np.asarray(estimator.target_scale_, dtype=np.float64),
    )
    return ExportedModel(modules, members).eval()


def _chain_model(
    preprocessing: Sequence[tuple[str, Any]],
    n_features: int,
    model_name: str,
    label: str,
    estimator: ChainSelectCV,
) -> ExportedModel:
    """A recipe that chose a chain per target: shared steps, then per target its chain.

    Each target's model after its chain must be linear (PLSR); it becomes one matrix.
    """
    modules, width = _convert_steps(preprocessing, n_features)
    branches: list[nn.Module] = []
    for target, chain in enumerate(estimator.estimators_):
        *steps, (_, model) = chain.steps
        branch, _ = _convert_steps(steps, width)

        def predict(Z: NDArray[np.float64], model: Any = model) -> NDArray[np.float64]:
            return np.asarray(model.predict(Z), dtype=np.float64).reshape(Z.shape[0], -1)

        try:
            head = _capture_affine(predict, width, f"{label} target {target}")
        except SpecsoilError:
            raise SpecsoilError(
                f"model {model_name!r}: only CNN models and linear ones (plsr) can be exported "
                f"to ONNX; its estimator {label!r} ({type(model).__name__}) is neither"
            ) from None
        branches.append(nn.Sequential(*branch, head))
    return ExportedModel(modules, PerTarget(branches)).eval()


def _linear_model(
    pipeline: Pipeline, n_features: int, model_name: str, label: str, estimator: Any
) -> ExportedModel:
    """A model whose whole ``predict`` is affine (e.g. PLSR after resampling) as one matrix."""

    def predict(X: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.asarray(pipeline.predict(X), dtype=np.float64)
        return out.reshape(X.shape[0], -1)  # (N, n_targets) also for 1-D y

    try:
        head = _capture_affine(predict, n_features, label)
    except SpecsoilError:
        raise SpecsoilError(
            f"model {model_name!r}: only CNN models and linear ones (plsr) can be exported "
            f"to ONNX; its estimator {label!r} ({type(estimator).__name__}) is neither"
        ) from None
    return ExportedModel([], head).eval()
