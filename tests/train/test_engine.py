"""Tests of the engine's device rules: batch scaling on a GPU, full float32 inference."""

from __future__ import annotations

import dataclasses
import math

import pytest

torch = pytest.importorskip("torch")

from specsoil.train import CNNRegressor, _engine  # noqa: E402


def _settings(**params):
    return _engine.check_settings(CNNRegressor(**params).get_params(deep=False))


class TestScaledForDevice:
    def test_cpu_settings_are_returned_unchanged(self):
        settings = _settings(device="cpu")
        assert _engine.data_device(settings) is None
        assert _engine.scaled_for_device(settings, 100_000) is settings

    @pytest.mark.parametrize(
        ("n_train", "batch", "factor"),
        [
            (20_000, 32, 32),  # capped at GPU_MAX_BATCH_FACTOR: 1,024 per step, 19 steps
            (8_192, 32, 16),  # 16 steps of 512
            (8_191, 32, 8),  # one row short of 16 steps of 512
            (618, 32, 1),  # nirsoil's calibration rows: batch 32 as on the CPU
        ],
    )
    def test_gpu_batch_and_sqrt_lr(self, monkeypatch, n_train, batch, factor):
        monkeypatch.setattr(_engine, "cuda_available", lambda: True)
        settings = _settings(device="cuda", precision="32-true", batch_size=batch, lr=1e-3)
        assert _engine.data_device(settings) == "cuda"
        scaled = _engine.scaled_for_device(settings, n_train)
        assert scaled.batch_size == batch * factor
        assert scaled.lr == pytest.approx(1e-3 * math.sqrt(factor))
        # Nothing else changes.
        assert dataclasses.replace(scaled, batch_size=batch, lr=1e-3) == settings
        assert n_train // scaled.batch_size >= _engine.GPU_MIN_STEPS_PER_EPOCH or factor == 1

    def test_data_goes_to_the_gpu_that_trains(self, monkeypatch):
        monkeypatch.setattr(_engine, "cuda_available", lambda: True)
        settings = _settings(device="cuda", precision="32-true", devices=[1])
        assert _engine.data_device(settings) == "cuda:1"

    def test_ddp_keeps_data_on_the_host(self, monkeypatch):
        monkeypatch.setattr(_engine, "cuda_available", lambda: True)
        settings = _settings(device="cuda", precision="32-true", strategy="ddp", devices=2)
        assert _engine.data_device(settings) is None
        assert _engine.scaled_for_device(settings, 100_000) is settings


def test_full_float32_switches_tf32_off_and_restores():
    backends = torch.backends
    before = (
        backends.cudnn.conv.fp32_precision,
        backends.cudnn.rnn.fp32_precision,
        backends.cuda.matmul.fp32_precision,
    )
    with _engine.full_float32():
        assert backends.cudnn.conv.fp32_precision == "ieee"
        assert backends.cudnn.rnn.fp32_precision == "ieee"
        assert backends.cuda.matmul.fp32_precision == "ieee"
    after = (
        backends.cudnn.conv.fp32_precision,
        backends.cudnn.rnn.fp32_precision,
        backends.cuda.matmul.fp32_precision,
    )
    assert after == before
