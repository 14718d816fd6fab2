"""Seeded, on-the-fly augmentation of spectra for CNN training.

Each perturbation mimics a nuisance that differs between soil samples, instruments or
sessions while leaving the soil's composition unchanged, so a network that learns to ignore
it generalises better from few samples (Bjerrum et al., 2017, "Data augmentation of
spectral data for convolutional neural network (CNN) based deep chemometrics",
arXiv:1710.01927):

- ``offset``: an additive baseline shift, ``x + a`` with ``a ~ N(0, offset)``;
- ``slope``: a linear baseline tilt, ``x + b * t`` with ``b ~ N(0, slope)`` and ``t`` running
  from -1 at the first band to +1 at the last;
- ``multiplicative``: scatter from particle size and packing, ``x * (1 + m)`` with
  ``m ~ N(0, multiplicative)``;
- ``noise``: detector noise, ``x + e`` with ``e ~ N(0, noise)`` drawn for every band;
- ``shift``: a small wavelength-calibration error, the spectrum moved by ``s ~ N(0, shift)``
  bands (fractional, by linear interpolation; the end bands are repeated).

Values are standard deviations in the units of the network's input (shift: in bands). One
draw per spectrum is shared by all its channels. This module imports torch only when an
augmenter is first applied, so validating a configuration works without the ``cnn`` extra.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# In the order they are applied: the shift acts on the clean spectrum, noise comes last.
AUGMENTATIONS: tuple[str, ...] = ("shift", "multiplicative", "offset", "slope", "noise")


def check_augment(augment: Mapping[str, Any] | None) -> dict[str, float]:
    """Validate an augmentation configuration.

    Args:
        augment: Mapping of augmentation name (see ``AUGMENTATIONS``) to its standard
            deviation (>= 0), or None for no augmentation.

    Returns:
        The configuration as a plain dict of floats, without the zero entries.

    Raises:
        ValueError: If ``augment`` is not a mapping, names an unknown augmentation, or has
            a value that is not a finite number >= 0.
    """
    if augment is None:
        return {}
    if not isinstance(augment, Mapping):
        raise ValueError(
            f"augment must be None or a dict such as {{'noise': 0.002}}; got {augment!r}"
        )
    checked: dict[str, float] = {}
    for key, value in augment.items():
        if key not in AUGMENTATIONS:
            raise ValueError(
                f"augment has unknown key {key!r}; expected some of {sorted(AUGMENTATIONS)}"
            )
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError(f"augment[{key!r}] must be a finite number >= 0; got {value!r}")
        if value > 0:
            checked[key] = float(value)
    return checked


class SpectralAugmenter:
    """Apply random, seeded perturbations to a batch of spectra (training only).

    Args:
        augment: Mapping of augmentation name to standard deviation; see the module
            docstring for what each does.
        seed: Seed of the augmenter's own random generator (independent of the global one,
            so augmentation does not change the sequence of weight initialisations).

    Raises:
        ValueError: If the configuration is invalid (see ``check_augment``).
    """

    def __init__(self, augment: Mapping[str, Any] | None, *, seed: int = 0) -> None:
        self.augment = check_augment(augment)
        self.seed = int(seed)
        self._generators: dict[str, torch.Generator] = {}

    def __bool__(self) -> bool:
        return bool(self.augment)

    def __getstate__(self) -> dict[str, Any]:
        # Generators cannot be pickled (DDP spawn pickles the training module); they are
        # recreated from the seed in the new process.
        return {"augment": self.augment, "seed": self.seed, "_generators": {}}

    def _generator(self, device: torch.device) -> torch.Generator:
        import torch

        key = str(device)
        if key not in self._generators:
            generator = torch.Generator(device=device)
            generator.manual_seed(self.seed)
            self._generators[key] = generator
        return self._generators[key]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Return an augmented copy of a batch.

        Args:
            x: Spectra, shape (batch, channels, n_bands).

        Returns:
            The perturbed spectra, same shape and dtype.

        Raises:
            ValueError: If ``x`` is not 3-D.
        """
        import torch

        if not self.augment:
            return x
        if x.ndim != 3:
            raise ValueError(
                "augmentation applies to spectra of shape (batch, channels, n_bands); "
                f"got shape {tuple(x.shape)}"
            )
        gen = self._generator(x.device)
        n, _, n_bands = x.shape
        out = x

        def draw(sd: float) -> torch.Tensor:
            # (N, 1, 1): one value per spectrum, shared by its channels and bands.
            return sd * torch.randn((n, 1, 1), generator=gen, device=x.device, dtype=x.dtype)

        if "shift" in self.augment:
            shift = draw(self.augment["shift"])  # (N, 1, 1), in bands
            positions = torch.arange(n_bands, device=x.device, dtype=x.dtype) - shift
            positions = positions.clamp(0, n_bands - 1)  # (N, 1, L); ends repeated
            left = positions.floor().long().clamp(max=n_bands - 2) if n_bands > 1 else None
            if left is not None:
                weight = positions - left.to(x.dtype)
                index = left.expand(-1, x.shape[1], -1)  # (N, C, L)
                x_left = torch.gather(out, 2, index)
                x_right = torch.gather(out, 2, index + 1)
                out = x_left + weight * (x_right - x_left)
        if "multiplicative" in self.augment:
            out = out * (1 + draw(self.augment["multiplicative"]))
        if "offset" in self.augment:
            out = out + draw(self.augment["offset"])
        if "slope" in self.augment:
            tilt = torch.linspace(-1.0, 1.0, n_bands, device=x.device, dtype=x.dtype)
            out = out + draw(self.augment["slope"]) * tilt  # (N, 1, 1) * (L,) -> (N, 1, L)
        if "noise" in self.augment:
            out = out + self.augment["noise"] * torch.randn(
                out.shape, generator=gen, device=x.device, dtype=x.dtype
            )
        return out
