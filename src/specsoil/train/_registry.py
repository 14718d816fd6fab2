"""The bridge to the network registry (``specsoil.nets``), imported on first use.

Kept in one place so that ``import specsoil.train`` never imports torch: users without the
``cnn`` extra can still build and fit the classic models that share the recipe registry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from specsoil._errors import SpecsoilError

if TYPE_CHECKING:
    from specsoil.nets import SpectralCNN


def require_torch(what: str) -> None:
    """Raise a clear error when PyTorch or PyTorch Lightning is not installed.

    Args:
        what: The class or action that needs them, for the message.

    Raises:
        SpecsoilError: If either cannot be imported.
    """
    try:
        import pytorch_lightning  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise SpecsoilError(
            f"{what} needs PyTorch and PyTorch Lightning, which are not installed "
            f"({exc.name} is missing); install them with: pip install 'specsoil[cnn]'"
        ) from exc


def torch_available() -> bool:
    """Whether PyTorch and PyTorch Lightning are installed (without importing them)."""
    import importlib.util

    return all(
        importlib.util.find_spec(name) is not None for name in ("torch", "pytorch_lightning")
    )


def available_modules() -> list[str]:
    """Names of the registered networks."""
    from specsoil.nets import list_models

    return list(list_models())


def create_net(
    name: str, *, n_outputs: int, input_shape: Sequence[int], params: Mapping[str, Any]
) -> SpectralCNN:
    """Build a registered network.

    Args:
        name: Registered network name.
        n_outputs: Number of outputs (targets, or classes).
        input_shape: Shape of one input without the batch: (C, L) or (1, F, T).
        params: Further keyword arguments of the network's factory.

    Returns:
        The network (a ``specsoil.nets.SpectralCNN``).
    """
    from specsoil.nets import create_model

    return create_model(name, n_outputs=n_outputs, input_shape=tuple(input_shape), **params)


def rebuild_net(config: Mapping[str, Any]) -> SpectralCNN:
    """Rebuild a network from its ``config()`` (untrained weights; load them after).

    Args:
        config: The dict returned by the network's ``config()``.

    Returns:
        The network.
    """
    from specsoil.nets import create_model

    return create_model(**config)
