"""Fixtures for the export tests: small CNN models fitted on real spectra, and their exports."""

from __future__ import annotations

import numpy as np
import pytest

from specsoil.data import SpectraTable, load_dataset

NIRSOIL_TARGETS = ["N_total_g_kg", "CEC_meq_100g"]


@pytest.fixture(scope="session")
def nirsoil() -> SpectraTable:
    """All 825 real NIR absorbance spectra (1100-2498 nm, 2 nm) of the bundled nirsoil set."""
    return load_dataset("nirsoil")


@pytest.fixture(scope="session")
def nirsoil_train(nirsoil) -> SpectraTable:
    """Every 10th spectrum (83): enough to fit a CNN for two epochs in about a second."""
    return nirsoil.subset(np.arange(0, nirsoil.n_samples, 10))


@pytest.fixture(scope="session")
def nirsoil_new(nirsoil) -> SpectraTable:
    """117 other real spectra, none used in fitting."""
    return nirsoil.subset(np.arange(5, nirsoil.n_samples, 7))


@pytest.fixture(scope="session")
def fit_cnn(nirsoil_train):
    """Fit (and cache) a CNN recipe on nirsoil_train for two epochs."""
    pytest.importorskip("torch")
    import torch

    from specsoil.models import SpectralModel

    torch.set_num_threads(1)  # 2 shared cores: keep the exporter off the other tests' core
    cache = {}

    def fit(recipe: str, **params):
        key = (recipe, tuple(sorted(params.items())))
        if key not in cache:
            cache[key] = SpectralModel.fit(
                nirsoil_train,
                NIRSOIL_TARGETS,
                recipe=recipe,
                params={"max_epochs": 2, **params},
                random_state=0,
            )
        return cache[key]

    return fit


@pytest.fixture(scope="session")
def exported(fit_cnn, tmp_path_factory):
    """Export (and cache) a fitted recipe; returns (SpectralModel, path of the .onnx file)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from specsoil.export import export_onnx

    cache = {}

    def export(recipe: str, **params):
        key = (recipe, tuple(sorted(params.items())))
        if key not in cache:
            model = fit_cnn(recipe, **params)
            path = tmp_path_factory.mktemp("onnx") / f"{recipe}.onnx"
            cache[key] = (model, export_onnx(model, path))
        return cache[key]

    return export
