"""Streamed training: row-group plans, the arguments fit_stream gets, and a real fit."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from specsoil import SpecsoilError
from specsoil.data import ParquetSpectraSource, read_spectra, write_synthetic
from specsoil.models import SpectralModel, fit_model_stream
from specsoil.models._streaming import SHUFFLE_ROW_GROUPS, _StreamPlan
from specsoil.preprocess import SpectralChannels
from specsoil.train import CNNRegressor

N_ROWS, GROUP, BANDS = 300, 30, 20


@pytest.fixture(scope="module")
def numbered(tmp_path_factory):
    """300 rows in row groups of 30 whose target `row` is the row number; rows 5-9 unlabelled.

    Band j of row i holds i + j / 100, so a batch's spectra show which rows it holds.
    """
    rows = np.arange(N_ROWS)
    target = rows.astype(np.float64)
    target[5:10] = np.nan
    columns = {"row": target}
    for j in range(BANDS):
        columns[f"{400 + 10 * j}"] = (rows + j / 100).astype(np.float32)
    path = tmp_path_factory.mktemp("plan") / "numbered.parquet"
    pq.write_table(pa.table(columns), path, row_group_size=GROUP)
    return ParquetSpectraSource(path, targets=["row"], spectra_kind="absorbance")


def plan_for(source, *, val_fraction=0.2, seed=0, batch_size=16):
    Y = source.read_targets()
    return _StreamPlan(source, [], Y, val_fraction=val_fraction, seed=seed, batch_size=batch_size)


def rows_of(batches):
    seen = []
    for X, Y in batches:
        assert X.dtype == np.float32
        assert X.shape[1:] == (1, BANDS)
        assert_array_equal(X[:, 0, 0], Y[:, 0])  # spectra and targets stay paired
        seen.extend(int(r) for r in Y[:, 0])
    return seen


def test_validation_rows_are_fixed_and_never_trained_on(numbered):
    plan = plan_for(numbered)
    validation = rows_of(plan.validation_batches())
    assert validation == sorted(validation)  # file order
    assert rows_of(plan.validation_batches()) == validation
    assert 0.1 < len(validation) / N_ROWS < 0.3
    labelled = set(range(N_ROWS)) - set(range(5, 10))
    for epoch in range(3):
        trained = rows_of(plan.train_batches(epoch))
        assert len(trained) == len(set(trained))  # each row once per epoch
        assert set(trained) | set(validation) == labelled
        assert not set(trained) & set(validation)
    assert plan.n_train + plan.n_validation == len(labelled)
    assert plan.n_validation == len(validation)
    # The same seed gives the same split; another seed another.
    assert rows_of(plan_for(numbered).validation_batches()) == validation
    assert rows_of(plan_for(numbered, seed=1).validation_batches()) != validation


def test_batches_are_shuffled_across_row_groups_and_epochs(numbered):
    plan = plan_for(numbered, batch_size=16)
    epochs = [list(plan.train_batches(epoch)) for epoch in range(2)]
    sizes = [len(Y) for _, Y in epochs[0]]
    assert all(size == 16 for size in sizes[:-1])
    assert 0 < sizes[-1] <= 16
    first = epochs[0][0][1][:, 0]
    assert len(set((first // GROUP).astype(int))) > 1  # rows of several row groups mixed
    assert rows_of(epochs[0]) != rows_of(epochs[1])
    assert rows_of(plan.train_batches(0)) == rows_of(epochs[0])  # repeatable per epoch


def test_only_a_few_row_groups_are_held_at_once(numbered, monkeypatch):
    plan = plan_for(numbered, val_fraction=0.0, batch_size=8)
    read = []
    original = numbered.iter_tables

    def counting(groups):
        for table in original(groups):
            read.append(table.n_samples)
            yield table

    monkeypatch.setattr(numbered, "iter_tables", counting)
    batches = plan.train_batches(0)
    next(batches)
    # The first batch comes once the buffer of row groups is full, not after the file.
    assert len(read) == SHUFFLE_ROW_GROUPS + 1 < N_ROWS // GROUP
    list(batches)
    assert len(read) == N_ROWS // GROUP


def test_classic_recipes_need_the_table_in_memory(numbered):
    with pytest.raises(
        SpecsoilError, match=r"'plsr' cannot be trained by streaming.*without --stream"
    ):
        fit_model_stream(numbered, recipe="plsr")
    with pytest.raises(SpecsoilError, match="val_fraction must be in"):
        fit_model_stream(numbered, recipe="cnn1d", val_fraction=1.0)
    with pytest.raises(SpecsoilError, match="fit_sample_rows must be an integer"):
        fit_model_stream(numbered, recipe="cnn1d", fit_sample_rows=0)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    path = tmp_path_factory.mktemp("fit") / "syn.parquet"
    write_synthetic(path, 600, seed=2, row_group_size=100)
    return path


def test_fit_stream_gets_preprocessed_batches_and_target_scaling(synthetic, monkeypatch):
    source = ParquetSpectraSource(synthetic, targets=["clay", "OC"])
    calls = {}

    def fake_fit_stream(
        self, train_batches, *, input_shape, target_mean, target_scale, val_batches
    ):
        calls.update(
            train=list(train_batches(0)),
            val=list(val_batches()),
            input_shape=input_shape,
            mean=target_mean,
            scale=target_scale,
        )
        return self

    monkeypatch.setattr(CNNRegressor, "fit_stream", fake_fit_stream, raising=False)
    model = fit_model_stream(
        source, recipe="cnn1d", params={"batch_size": 50}, fit_sample_rows=150, random_state=3
    )
    Y = read_spectra(synthetic).targets(["clay", "OC"])
    assert calls["input_shape"] == (3, 210)  # absorbance, derivative, SNV on a 10 nm grid
    assert_allclose(calls["mean"], Y.mean(axis=0))
    assert_allclose(calls["scale"], Y.std(axis=0))
    assert all(X.shape[1:] == (3, 210) and X.dtype == np.float32 for X, _ in calls["train"])
    assert [len(Y) for _, Y in calls["train"]][:-1] == [50] * (len(calls["train"]) - 1)
    n_train = sum(len(Y) for _, Y in calls["train"])
    n_val = sum(len(Y) for _, Y in calls["val"])
    assert n_train + n_val == 600
    assert 30 < n_val < 100
    channels = model.pipeline[-1][0]
    assert isinstance(channels, SpectralChannels)
    assert channels.mean_.shape == (3, 210)
    assert model.training["streamed"] is True
    assert model.training["synthetic"] is True
    assert model.training["n_samples"] == 600
    assert model.training["preprocessing_fit_rows"] == 200  # two whole row groups
    assert model.training["n_validation_rows"] == n_val
    assert model.recipe == "cnn1d"
    assert model.targets == ["clay", "OC"]


@pytest.mark.skipif(
    not hasattr(CNNRegressor, "fit_stream"), reason="CNNRegressor.fit_stream not available"
)
def test_streamed_cnn_trains_saves_and_predicts(synthetic, tmp_path):
    pytest.importorskip("torch")
    source = ParquetSpectraSource(synthetic, targets=["clay", "OC"])
    model = fit_model_stream(
        source,
        recipe="cnn1d",
        params={"max_epochs": 2, "patience": None, "batch_size": 64},
        fit_sample_rows=200,
    )
    table = read_spectra(synthetic)
    predicted = model.predict(table)
    assert predicted.shape == (600, 2)
    assert np.isfinite(predicted).all()
    assert len(model.pipeline[-1][-1].history_["train_loss"]) == 2
    loaded = SpectralModel.load(model.save(tmp_path / "model"))
    assert loaded.training["streamed"] is True
    assert_allclose(loaded.predict(table), predicted, rtol=1e-5, atol=1e-5)
