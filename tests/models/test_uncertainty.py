"""Conformal prediction intervals (split, CV+) and the PCA applicability domain."""

from __future__ import annotations

import json
import logging
import math
import shutil

import numpy as np
import pandas as pd
import pytest

from specsoil._errors import SpecsoilError
from specsoil.data import SpectraTable, load_dataset
from specsoil.models import ApplicabilityDomain, ConformalCalibration, SpectralModel
from specsoil.models._spectral_model import (
    CONFORMAL_FILE,
    DOMAIN_FILE,
    MANIFEST,
    _resolve_conformal,
    align_spectra,
)
from specsoil.models._uncertainty import conformal_rank

NOMINAL = 0.9
# Spectra of the synthetic sets: 40 bands, no resampling (preprocessing=[]), so a PLS fit
# takes milliseconds and many seeds fit in the time budget.
WAVELENGTHS = np.linspace(1000.0, 2000.0, 40)
PLSR = {"max_components": 6, "cv": 5}


def synthetic(n: int, seed: int, *, n_targets: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Exchangeable (X, Y): spectra from 4 latent factors, targets linear in them plus noise."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 4))
    loadings = np.sin(np.outer(np.arange(1, 5), np.linspace(0, np.pi, WAVELENGTHS.size)))
    X = 1.0 + 0.2 * latent @ loadings + 0.01 * rng.normal(size=(n, WAVELENGTHS.size))
    weights = np.array([[2.0, -1.0, 0.5, 0.0], [0.0, 1.0, 1.0, -2.0]])[:n_targets]
    # Heavy-ish tails (t with 5 df): conformal needs no normality.
    Y = latent @ weights.T + 0.5 * rng.standard_t(5, size=(n, n_targets))
    return X, Y


def table_of(X: np.ndarray, Y: np.ndarray | None, wavelengths=WAVELENGTHS) -> SpectraTable:
    frame = pd.DataFrame({"sample_id": np.arange(len(X))})
    if Y is not None:
        for j in range(Y.shape[1]):
            frame[f"y{j}"] = Y[:, j]
    return SpectraTable(
        X=np.asarray(X, dtype=np.float32),
        wavelengths=np.asarray(wavelengths, dtype=np.float64),
        metadata=frame,
        source="synthetic",
    )


def coverage(Y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Share of known lab values inside their interval, per target."""
    known = np.isfinite(Y)
    inside = (Y >= lower) & (Y <= upper)
    return np.array([inside[known[:, j], j].mean() for j in range(Y.shape[1])])


class TestConformalQuantile:
    def test_rank_is_the_finite_sample_quantile(self):
        assert conformal_rank(19, 0.05) == 19  # ceil(20 * 0.95) = 19, not 20 by rounding
        assert conformal_rank(18, 0.05) == 19  # > n: infinite bound
        assert conformal_rank(99, 0.1) == 90
        assert conformal_rank(100, 0.1) == 91

    def test_split_half_width_is_the_ranked_residual_and_nan_is_skipped(self):
        truth = np.array([[0.0], [0.0], [0.0], [np.nan], [0.0]] * 4)
        residuals = np.array([1.0, 2.0, 3.0, 99.0, 4.0] * 4)
        pred = truth + residuals[:, None]
        cal = ConformalCalibration.from_predictions("split", ["y"], truth, pred)
        assert cal.n_calibration() == {"y": 16}
        # 16 scores at 0.75: rank ceil(17 * 0.75) = 13 -> the 13th smallest is 4.0.
        lower, upper = cal.interval(np.array([[10.0]]), 0.75)
        assert lower[0, 0] == 6.0
        assert upper[0, 0] == 14.0

    def test_too_few_rows_give_infinite_bounds_with_a_warning(self, caplog):
        truth = np.zeros((10, 1))
        cal = ConformalCalibration.from_predictions("split", ["y"], truth, truth + 1.0)
        with caplog.at_level(logging.WARNING):
            lower, upper = cal.interval(np.zeros((3, 1)), 0.95)
        assert np.isneginf(lower).all()
        assert np.isposinf(upper).all()
        assert "no finite 95% conformal bound" in caplog.text
        lower, upper = cal.interval(np.zeros((3, 1)), 0.9)  # 10 rows suffice for 90 %
        np.testing.assert_allclose(upper - lower, 2.0)

    @pytest.mark.parametrize(("confidence", "needed"), [(0.8, 4), (0.9, 9), (0.95, 19)])
    def test_warning_names_the_rows_that_would_suffice(self, caplog, confidence, needed):
        # (1 - alpha) / alpha rows give a finite bound; round-off once made 0.9 ask for 10.
        assert conformal_rank(needed, 1 - confidence) <= needed
        truth = np.zeros((needed - 1, 1))
        cal = ConformalCalibration.from_predictions("split", ["y"], truth, truth + 1.0)
        with caplog.at_level(logging.WARNING):
            lower, _ = cal.interval(np.zeros((1, 1)), confidence)
        assert np.isneginf(lower).all()
        assert f"needs at least {needed})" in caplog.text

    def test_cv_plus_matches_the_definition(self):
        rng = np.random.default_rng(3)
        n, n_new, k = 23, 7, 4
        folds = rng.integers(0, k, size=n)
        folds[:k] = np.arange(k)
        truth = rng.normal(size=(n, 1))
        held_out = truth + rng.normal(size=(n, 1))
        fold_pred = rng.normal(size=(k, n_new, 1))
        cal = ConformalCalibration.from_predictions("cv+", ["y"], truth, held_out, folds)
        lower, upper = cal.interval(np.zeros((n_new, 1)), 0.8, fold_pred)
        scores = np.abs(truth - held_out)[:, 0]
        alpha = 0.2
        for x in range(n_new):
            mu = fold_pred[folds, x, 0]
            # Barber et al. (2021): q^-_alpha and q^+_alpha of mu -/+ R over calibration rows.
            low = np.sort(mu - scores)[math.floor(alpha * (n + 1)) - 1]
            high = np.sort(mu + scores)[math.ceil((1 - alpha) * (n + 1)) - 1]
            assert lower[x, 0] == pytest.approx(low)
            assert upper[x, 0] == pytest.approx(high)

    def test_bad_arguments(self):
        truth = np.zeros((12, 1))
        with pytest.raises(SpecsoilError, match="one of"):
            ConformalCalibration.from_predictions("jackknife", ["y"], truth, truth)  # type: ignore[arg-type]
        with pytest.raises(SpecsoilError, match="fold of every row"):
            ConformalCalibration.from_predictions("cv+", ["y"], truth, truth)
        cal = ConformalCalibration.from_predictions("split", ["y"], truth, truth)
        with pytest.raises(SpecsoilError, match="between 0 and 1"):
            cal.interval(truth, 90)


class TestCoverage:
    def test_split_and_cv_plus_cover_linear_models_over_many_seeds(self):
        """The guarantee itself, with a least-squares model: 300 exchangeable draws."""
        covered = {"split": [], "cv+": []}
        for seed in range(300):
            X, Y = synthetic(90, seed)
            Y_fit, X_new, Y_new = Y[:60], X[60:], Y[60:]
            design = np.c_[np.ones(len(X)), X[:, ::4]]

            def fit(rows, design=design, Y=Y):
                return np.linalg.lstsq(design[rows], Y[rows], rcond=None)[0]

            # split: fit on 40 rows, calibrate on 20
            beta = fit(np.arange(40))
            cal = ConformalCalibration.from_predictions(
                "split", ["y"], Y_fit[40:], design[40:60] @ beta
            )
            lower, upper = cal.interval(design[60:] @ beta, NOMINAL)
            covered["split"].append(coverage(Y_new, lower, upper)[0])
            # CV+ with 5 folds on all 60 rows
            folds = np.arange(60) % 5
            held = np.empty((60, 1))
            fold_pred = np.empty((5, len(X_new), 1))
            for k in range(5):
                beta = fit(np.flatnonzero(folds != k))
                held[folds == k] = design[:60][folds == k] @ beta
                fold_pred[k] = design[60:] @ beta
            cal = ConformalCalibration.from_predictions("cv+", ["y"], Y_fit, held, folds)
            lower, upper = cal.interval(np.zeros((len(X_new), 1)), NOMINAL, fold_pred)
            covered["cv+"].append(coverage(Y_new, lower, upper)[0])
        # Mean coverage over 300 draws of 30 new rows: its sd is about 0.01.
        assert np.mean(covered["split"]) >= NOMINAL - 0.02
        assert np.mean(covered["cv+"]) >= NOMINAL - 0.02
        # ... and not vacuous: the intervals are not much wider than needed either.
        assert np.mean(covered["split"]) < 0.97
        assert np.mean(covered["cv+"]) < 0.97

    @pytest.mark.parametrize("method", ["split", "cv+"])
    def test_spectral_model_intervals_cover_held_out_spectra(self, method):
        covered = []
        for seed in range(12):
            X, Y = synthetic(200, 100 + seed, n_targets=2)
            model = SpectralModel.fit(
                table_of(X[:100], Y[:100]),
                ["y0", "y1"],
                recipe="plsr",
                preprocessing=[],
                params={**PLSR, "cv": 3},
                random_state=seed,
                conformal=method,
            )
            new = table_of(X[100:], Y[100:])
            point, lower, upper = model.predict_interval(new, NOMINAL)
            np.testing.assert_allclose(point, model.predict(new))
            covered.append(coverage(Y[100:], lower, upper))
        mean = np.mean(covered, axis=0)
        assert (mean >= NOMINAL - 0.03).all(), mean
        assert (mean < 0.98).all(), mean

    def test_real_geeves_split_covers_each_target(self):
        table = load_dataset("geeves")
        targets = ["clay_pct", "total_carbon_pct"]
        order = np.random.default_rng(0).permutation(table.n_samples)
        fit_rows, new_rows = np.sort(order[:250]), np.sort(order[250:])

        def rows(index):
            return SpectraTable(
                X=table.X[index],
                wavelengths=table.wavelengths,
                metadata=table.metadata.iloc[index].reset_index(drop=True),
                source="geeves",
            )

        model = SpectralModel.fit(
            rows(fit_rows), targets, recipe="plsr", params={"max_components": 12}, conformal="cv+"
        )
        new = rows(new_rows)
        _, lower, upper = model.predict_interval(new, NOMINAL)
        # 141 held-out soils: one draw, so allow ~2.5 binomial sd (0.025 each).
        assert (coverage(new.targets(targets), lower, upper) >= NOMINAL - 0.065).all()

    def test_missing_lab_values_are_masked_per_target(self, nirsoil_subset):
        X, Y, wavelengths = nirsoil_subset  # 16 and 41 of 83 values missing
        frame = pd.DataFrame({"sample_id": np.arange(len(X)), "N": Y[:, 0], "CEC": Y[:, 1]})
        table = SpectraTable(
            X=X.astype(np.float32), wavelengths=wavelengths, metadata=frame, source="nirsoil"
        )
        model = SpectralModel.fit(
            table, ["N", "CEC"], recipe="plsr", params={"max_components": 5}, conformal="cv+"
        )
        assert model.conformal is not None
        assert model.conformal.n_calibration() == {
            "N": int(np.isfinite(Y[:, 0]).sum()),
            "CEC": int(np.isfinite(Y[:, 1]).sum()),
        }
        _, lower, upper = model.predict_interval(table, NOMINAL)
        assert np.isfinite(lower).all()
        assert np.isfinite(upper).all()
        assert (upper > lower).all()


class TestFitAndSave:
    def test_auto_is_cv_plus_for_plsr_and_none_for_cnn(self):
        from specsoil.models import make_recipe

        assert _resolve_conformal("auto", make_recipe("plsr", WAVELENGTHS)) == "cv+"
        assert _resolve_conformal(None, make_recipe("plsr", WAVELENGTHS)) is None
        pytest.importorskip("torch")
        assert _resolve_conformal("auto", make_recipe("cnn1d", WAVELENGTHS)) is None
        with pytest.raises(SpecsoilError, match="conformal must be"):
            _resolve_conformal("bootstrap", make_recipe("plsr", WAVELENGTHS))  # type: ignore[arg-type]

    def test_split_fits_on_the_rest_and_checks_the_fraction(self):
        X, Y = synthetic(60, 0)
        table = table_of(X, Y)
        kwargs = {"recipe": "plsr", "preprocessing": [], "params": PLSR}
        model = SpectralModel.fit(table, ["y0"], conformal="split", **kwargs)
        assert model.training["conformal"] == {
            "method": "split",
            "n_folds": 1,
            "n_calibration": {"y0": 12},
            "n_fit_rows": 48,
        }
        with pytest.raises(SpecsoilError, match="calibration_fraction must be between"):
            SpectralModel.fit(table, ["y0"], conformal="split", calibration_fraction=1.5, **kwargs)
        with pytest.raises(SpecsoilError, match=r"CV\+ needs between 2 and 60 folds"):
            SpectralModel.fit(table, ["y0"], conformal="cv+", conformal_folds=1, **kwargs)

    def test_save_and_load_keep_intervals_and_domain(self, tmp_path):
        X, Y = synthetic(120, 1)
        fitted = SpectralModel.fit(
            table_of(X[:80], Y[:80]),
            ["y0"],
            recipe="plsr",
            preprocessing=[],
            params=PLSR,
            conformal="cv+",
            conformal_folds=4,
        )
        loaded = SpectralModel.load(fitted.save(tmp_path / "m"))
        manifest = json.loads((tmp_path / "m" / MANIFEST).read_text())
        assert manifest["files"]["conformal_folds"] == [
            f"conformal_fold_{k}.skops" for k in range(4)
        ]
        assert manifest["applicability_domain"]["t2_limit_99"] > 0
        new = table_of(X[80:], None)
        before, after = fitted.predict_interval(new, 0.8), loaded.predict_interval(new, 0.8)
        for a, b in zip(before, after, strict=True):
            np.testing.assert_allclose(a, b)
        first, second = fitted.assess_domain(new), loaded.assess_domain(new)
        np.testing.assert_allclose(first.hotelling_t2, second.hotelling_t2)
        np.testing.assert_array_equal(first.in_domain, second.in_domain)

    def test_a_model_directory_without_them_loads_predicts_and_explains(self, tmp_path):
        X, Y = synthetic(60, 2)
        table = table_of(X, Y)
        model_dir = SpectralModel.fit(
            table, ["y0"], recipe="plsr", preprocessing=[], params=PLSR, conformal="split"
        ).save(tmp_path / "m")
        # What an earlier specsoil wrote: the pipeline and a manifest listing only it.
        manifest = json.loads((model_dir / MANIFEST).read_text())
        manifest["files"] = {"pipeline": manifest["files"]["pipeline"]}
        del manifest["applicability_domain"]
        (model_dir / MANIFEST).write_text(json.dumps(manifest))
        (model_dir / CONFORMAL_FILE).unlink()
        (model_dir / DOMAIN_FILE).unlink()
        old = SpectralModel.load(model_dir)
        assert old.conformal is None
        assert old.domain is None
        assert old.predict(table).shape == (60, 1)
        with pytest.raises(SpecsoilError, match="retrain it with specsoil train --conformal"):
            old.predict_interval(table, 0.9)
        with pytest.raises(SpecsoilError, match="no applicability domain"):
            old.assess_domain(table)

    def test_a_listed_file_that_is_missing_or_foreign_is_an_error(self, tmp_path):
        X, Y = synthetic(60, 2)
        model_dir = SpectralModel.fit(
            table_of(X, Y), ["y0"], recipe="plsr", preprocessing=[], params=PLSR, conformal="cv+"
        ).save(tmp_path / "m")
        broken = tmp_path / "broken"
        shutil.copytree(model_dir, broken)
        (broken / "conformal_fold_2.skops").unlink()
        with pytest.raises(SpecsoilError, match=r"conformal_fold_2\.skops, listed in the manifest"):
            SpectralModel.load(broken)
        pickled = tmp_path / "pickled"
        shutil.copytree(model_dir, pickled)
        with np.load(model_dir / DOMAIN_FILE) as saved:
            arrays = dict(saved)
        arrays["mean"] = np.array([object()], dtype=object)  # would need pickle to read
        np.savez(pickled / DOMAIN_FILE, **arrays)
        with pytest.raises(
            SpecsoilError, match=f"{DOMAIN_FILE}: refused to load: it holds pickled"
        ):
            SpectralModel.load(pickled)

    def test_inconsistent_calibration_or_domain_arrays_are_an_error(self, tmp_path):
        X, Y = synthetic(60, 2)
        model_dir = SpectralModel.fit(
            table_of(X, Y), ["y0"], recipe="plsr", preprocessing=[], params=PLSR, conformal="cv+"
        ).save(tmp_path / "m")
        with np.load(model_dir / CONFORMAL_FILE) as saved:
            calibration = dict(saved)
        with np.load(model_dir / DOMAIN_FILE) as saved:
            domain = dict(saved)
        folds = tmp_path / "folds"
        shutil.copytree(model_dir, folds)
        np.savez(folds / CONFORMAL_FILE, **{**calibration, "folds": calibration["folds"] + 3})
        with pytest.raises(SpecsoilError, match=f"{CONFORMAL_FILE}: fold ids"):
            SpectralModel.load(folds)
        pca = tmp_path / "pca"
        shutil.copytree(model_dir, pca)
        np.savez(pca / DOMAIN_FILE, **{**domain, "mean": domain["mean"][:-1]})
        with pytest.raises(SpecsoilError, match=f"{DOMAIN_FILE}: inconsistent PCA arrays"):
            SpectralModel.load(pca)


@pytest.fixture(scope="module")
def geeves_split():
    """geeves on 1100-2490 nm (the range nirsoil covers), 250 training and 141 new soils."""
    table = load_dataset("geeves")
    keep = (table.wavelengths >= 1100) & (table.wavelengths <= 2490)
    order = np.random.default_rng(0).permutation(table.n_samples)

    def rows(index):
        return SpectraTable(
            X=np.ascontiguousarray(table.X[np.sort(index)][:, keep]),
            wavelengths=table.wavelengths[keep],
            metadata=table.metadata.iloc[np.sort(index)].reset_index(drop=True),
            source="geeves",
        )

    train, new = rows(order[:250]), rows(order[250:])
    model = SpectralModel.fit(train, ["clay_pct"], recipe="plsr", params={"max_components": 8})
    return model, new


class TestApplicabilityDomain:
    def test_held_out_spectra_of_the_same_set_are_accepted_at_about_the_nominal_rate(
        self, geeves_split
    ):
        model, new = geeves_split
        # 99 % limits on each of T² and Q: about 2 % of new spectra flagged by design.
        assessment = model.assess_domain(new)
        assert 1 - assessment.in_domain.mean() <= 0.06
        assert (model.assess_domain(new, confidence=0.9).in_domain.mean()) < (
            assessment.in_domain.mean()
        )

    def test_held_out_rate_over_many_splits(self):
        table = load_dataset("geeves")
        model = SpectralModel.fit(
            table, ["clay_pct"], recipe="plsr", params={"max_components": 2}, conformal=None
        )
        features = model.domain_features(table.X)
        rates = []
        for seed in range(10):
            order = np.random.default_rng(seed).permutation(table.n_samples)
            domain = ApplicabilityDomain.fit(features[order[:250]], random_state=seed)
            rates.append(1 - domain.assess(features[order[250:]]).in_domain.mean())
        assert np.mean(rates) <= 0.045  # nominal 2 %: 1 % each for T² and Q
        assert np.mean(rates) > 0.0  # the limits are not so loose that nothing is ever flagged

    def test_spectra_of_another_library_are_flagged(self, geeves_split):
        model, _ = geeves_split
        nirsoil = load_dataset("nirsoil")  # another instrument, other soils; resampled
        assert model.assess_domain(nirsoil).in_domain.mean() < 0.2

    def test_spectra_with_an_unseen_absorption_feature_are_flagged(self, geeves_split):
        model, new = geeves_split
        band = 0.03 * np.exp(-0.5 * ((new.wavelengths - 1750.0) / 15.0) ** 2)
        altered = SpectraTable(
            X=(new.X + band).astype(np.float32),
            wavelengths=new.wavelengths,
            metadata=new.metadata,
            source="altered",
        )
        assessment = model.assess_domain(altered)
        assert assessment.in_domain.mean() < 0.2
        # It is the residual, not the scores, that sees a feature the PCA never learnt.
        assert np.median(assessment.q_residual) > assessment.q_limit
        assert np.all(np.isfinite(assessment.hotelling_t2))

    def test_features_follow_the_pipeline_preprocessing(self, geeves_split):
        model, new = geeves_split
        aligned = align_spectra(new, model.wavelengths, model_name="m")
        features = model.domain_features(aligned)
        # plsr's preprocessing is the 10 nm band averaging: 140 bands from 1100 to 2490 nm.
        assert features.shape == (new.n_samples, model.domain.mean.size)
        assert features.shape[1] == np.asarray(model.pipeline[:-1].transform(aligned)).shape[1]

    def test_domain_needs_enough_spectra(self, caplog):
        X, Y = synthetic(8, 0)
        with caplog.at_level(logging.WARNING):
            model = SpectralModel.fit(
                table_of(X, Y), ["y0"], recipe="plsr", preprocessing=[], params={"cv": 2}
            )
        assert model.domain is None
        assert "too few for an applicability domain" in caplog.text
        with pytest.raises(SpecsoilError, match="at least 10 training spectra"):
            ApplicabilityDomain.fit(X)
