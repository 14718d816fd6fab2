"""Fine-tuning a saved CNN model on local spectra (models._transfer)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from specsoil._errors import SpecsoilError
from specsoil.data import SpectraTable, read_spectra
from specsoil.models import (
    MemoryBasedLearning,
    SpectralModel,
    finetune_model,
    is_finetunable,
    make_recipe,
    similar_rows,
)

pytest.importorskip("torch")

GEEVES_SMALL = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "geeves_small.csv"

# 40 nm bands keep the network tiny; few epochs keep each fit well under a second.
CNN_PREPROCESSING = [{"name": "resample", "step": 40, "method": "mean"}]
CNN_PARAMS = {"max_epochs": 3, "batch_size": 16, "patience": None}


@pytest.fixture(scope="module")
def halves():
    """The 60 real geeves_small soils: 40 as the base library, 20 as the 'local' site."""
    table = read_spectra(GEEVES_SMALL, spectra_kind="reflectance")
    return table.subset(np.arange(40)), table.subset(np.arange(40, 60))


@pytest.fixture(scope="module")
def base(halves):
    return SpectralModel.fit(
        halves[0],
        ["clay_pct", "total_carbon_pct"],
        recipe="cnn1d",
        name="library",
        preprocessing=CNN_PREPROCESSING,
        params=CNN_PARAMS,
    )


def _network(model: SpectralModel):
    return model.pipeline[-1][-1]


class TestFinetuneModel:
    def test_same_targets_keep_grid_preprocessing_and_head(self, base, halves):
        local = halves[1]
        before = base.predict(local)
        tuned = finetune_model(base, local, base.targets, strategy="partial", max_epochs=2)
        assert tuned.name == "library-finetuned"
        assert tuned.recipe == "cnn1d"
        assert tuned.targets == base.targets
        np.testing.assert_array_equal(tuned.wavelengths, base.wavelengths)
        assert tuned.preprocessing == base.preprocessing
        # The fitted channel standardisation is the base's, not refitted on the 20 samples.
        np.testing.assert_array_equal(tuned.pipeline[-1][0].mean_, base.pipeline[-1][0].mean_)
        assert tuned.pipeline[-1][0] is not base.pipeline[-1][0]  # a copy, not shared
        # The head's target scaling carries over; the base itself is left untouched.
        np.testing.assert_array_equal(_network(tuned).target_mean_, _network(base).target_mean_)
        np.testing.assert_array_equal(base.predict(local), before)
        predicted = tuned.predict(local)
        assert predicted.shape == (20, 2)
        assert np.isfinite(predicted).all()
        assert not np.allclose(predicted, before)  # the weights moved

    def test_new_targets_get_a_new_head(self, base, halves):
        local = halves[1]
        tuned = finetune_model(base, local, ["sand_pct"], strategy="head", max_epochs=2)
        assert tuned.targets == ["sand_pct"]
        sand = local.targets(["sand_pct"])[:, 0]
        # A new head standardises with the local targets' own mean.
        np.testing.assert_allclose(_network(tuned).target_mean_, [sand.mean()])
        assert tuned.predict(local).shape == (20, 1)

    def test_lineage_in_the_training_summary(self, base, halves):
        tuned = finetune_model(
            base, halves[1], ["clay_pct"], strategy="full", max_epochs=1, name="site_b"
        )
        assert tuned.name == "site_b"
        lineage = tuned.training["finetuned_from"]
        assert lineage["name"] == "library"
        assert lineage["n_samples"] == 40
        assert lineage["targets"] == ["clay_pct", "total_carbon_pct"]
        assert tuned.training["finetune"]["strategy"] == "full"
        assert tuned.training["finetune"]["local_n"] == 20
        assert tuned.training["finetune"]["new_head"] is True
        assert tuned.training["n_samples"] == 20

    def test_save_and_load_round_trip(self, base, halves, tmp_path):
        tuned = finetune_model(base, halves[1], base.targets, max_epochs=1)
        loaded = SpectralModel.load(tuned.save(tmp_path / "tuned"))
        assert loaded.training["finetuned_from"]["name"] == "library"
        np.testing.assert_allclose(loaded.predict(halves[1]), tuned.predict(halves[1]), rtol=1e-5)

    def test_clip_bounds_of_shared_targets_are_kept(self, base, halves):
        import dataclasses

        bounded = dataclasses.replace(
            base, clip={"clay_pct": (0.0, 100.0), "total_carbon_pct": (0.0, None)}
        )
        tuned = finetune_model(bounded, halves[1], ["clay_pct"], strategy="head", max_epochs=1)
        assert tuned.clip == {"clay_pct": (0.0, 100.0)}

    def test_local_spectra_on_another_grid_are_resampled(self, base, halves):
        local = halves[1]
        # A 25 nm instrument covering the same range (350-2500 nm).
        grid = np.arange(350.0, 2501.0, 25.0)
        X = np.stack([np.interp(grid, local.wavelengths, row) for row in local.X])
        coarse = dataclasses.replace(local, X=X.astype(np.float32), wavelengths=grid)
        tuned = finetune_model(base, coarse, base.targets, max_epochs=1)
        np.testing.assert_array_equal(tuned.wavelengths, base.wavelengths)
        assert tuned.predict(coarse).shape == (20, 2)

    def test_refuses_spectra_that_do_not_cover_the_grid(self, base, halves):
        local = halves[1]
        keep = local.wavelengths >= 1000
        narrow = dataclasses.replace(local, X=local.X[:, keep], wavelengths=local.wavelengths[keep])
        with pytest.raises(SpecsoilError, match="cannot extrapolate"):
            finetune_model(base, narrow, base.targets)

    def test_refuses_classic_models(self, halves):
        plsr = SpectralModel.fit(halves[0], ["clay_pct"], recipe="plsr")
        with pytest.raises(SpecsoilError, match=r"fine-tuning needs a CNN.*spiking"):
            finetune_model(plsr, halves[1], ["clay_pct"])

    @pytest.mark.parametrize(
        ("targets", "strategy", "match"),
        [
            (["clay_pct"], "everything", "unknown fine-tuning strategy"),
            ([], "partial", "name the properties"),
            (["nope"], "partial", "unknown target 'nope'"),
        ],
    )
    def test_rejects_bad_arguments(self, base, halves, targets, strategy, match):
        with pytest.raises(SpecsoilError, match=match):
            finetune_model(base, halves[1], targets, strategy=strategy)

    def test_a_new_head_needs_two_lab_values_per_target(self, base, halves):
        local = halves[1]
        metadata = local.metadata.assign(clay_pct=[np.nan] * 19 + [30.0])
        sparse: SpectraTable = dataclasses.replace(local, metadata=metadata)
        with pytest.raises(SpecsoilError, match="'clay_pct' has 1 lab values"):
            finetune_model(base, sparse, ["clay_pct"])

    def test_the_kept_head_masks_missing_local_values(self, base, halves):
        local = halves[1]
        metadata = local.metadata.assign(total_carbon_pct=[np.nan] * 19 + [1.2])
        sparse: SpectraTable = dataclasses.replace(local, metadata=metadata)
        tuned = finetune_model(base, sparse, base.targets, max_epochs=1)
        assert np.isfinite(tuned.predict(local)).all()
        unlabelled = dataclasses.replace(sparse, metadata=metadata.assign(clay_pct=np.nan))
        with pytest.raises(SpecsoilError, match="'clay_pct' has 0 lab values"):
            finetune_model(base, unlabelled, base.targets)


class TestBatchNormAndReplay:
    def test_batchnorm_statistics_stay_the_base_s_by_default(self, base, halves):
        def statistics(model):
            net = _network(model).module_
            return {
                k: v.clone()
                for k, v in net.state_dict().items()
                if k.endswith(("running_mean", "running_var"))
            }

        before = statistics(base)
        assert before
        frozen = finetune_model(base, halves[1], base.targets, strategy="full", max_epochs=2)
        assert frozen.training["finetune"]["batchnorm"] == "frozen"
        after = statistics(frozen)
        assert all(np.array_equal(before[k], after[k]) for k in before)
        adapted = finetune_model(
            base, halves[1], base.targets, strategy="full", max_epochs=2, batchnorm="adapt"
        )
        moved = statistics(adapted)
        assert all(not np.array_equal(before[k], moved[k]) for k in before)

    def test_replay_trains_on_the_replay_table(self, base, halves):
        library, local = halves
        settings = {"strategy": "head", "max_epochs": 5, "lr": 1e-2}
        replayed = finetune_model(base, local, base.targets, replay=library, **settings)
        plain = finetune_model(base, local, base.targets, **settings)
        assert not np.allclose(replayed.predict(local), plain.predict(local))
        record = replayed.training["finetune"]["replay"]
        assert record == {
            "source": library.source,
            "n_samples": 40,
            "local_share": 0.5,
            "neighbours_per_local_sample": None,
        }
        assert plain.training["finetune"]["replay"] is None
        # Replayed lab values steer the fit: clay 100 higher in the replay rows lifts the
        # clay predictions (by about 18 here) and leaves the carbon output as it was.
        shifted = dataclasses.replace(
            library, metadata=library.metadata.assign(clay_pct=library.metadata["clay_pct"] + 100)
        )
        lifted = finetune_model(base, local, base.targets, replay=shifted, **settings)
        shift = np.mean(lifted.predict(local) - replayed.predict(local), axis=0)
        assert shift[0] > 5.0
        assert abs(shift[1]) < 1e-6

    def test_replay_rows_without_lab_values_are_dropped(self, base, halves):
        library, local = halves
        clay = library.metadata["clay_pct"].to_numpy(dtype=float, copy=True)
        carbon = library.metadata["total_carbon_pct"].to_numpy(dtype=float, copy=True)
        clay[:10], carbon[:10] = np.nan, np.nan
        sparse = dataclasses.replace(
            library, metadata=library.metadata.assign(clay_pct=clay, total_carbon_pct=carbon)
        )
        tuned = finetune_model(base, local, base.targets, replay=sparse, max_epochs=1)
        assert tuned.training["finetune"]["replay"]["n_samples"] == 30

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"batchnorm": "train"}, "unknown BatchNorm mode 'train'"),
            ({"replay": "LIBRARY", "local_share": 1.0}, "local_share must be between 0 and 1"),
            ({"replay": "NO_CLAY"}, r"replay data lack target column\(s\) \['clay_pct'\]"),
            ({"replay": "NO_VALUES"}, "replay data hold no lab value"),
        ],
    )
    def test_rejects_bad_settings(self, base, halves, kwargs, match):
        library = halves[0]
        tables = {
            "LIBRARY": library,
            "NO_CLAY": dataclasses.replace(
                library, metadata=library.metadata.drop(columns="clay_pct")
            ),
            "NO_VALUES": dataclasses.replace(
                library,
                metadata=library.metadata.assign(clay_pct=np.nan, total_carbon_pct=np.nan),
            ),
        }
        if "replay" in kwargs:
            kwargs = {**kwargs, "replay": tables[kwargs["replay"]]}
        with pytest.raises(SpecsoilError, match=match):
            finetune_model(base, halves[1], base.targets, max_epochs=1, **kwargs)


class TestIsFinetunable:
    @pytest.mark.parametrize(
        ("recipe", "expected"),
        [("cnn1d", True), ("seed_cnn", True), ("cnn2d", True), ("plsr", False), ("mbl", False)],
    )
    def test_recipes(self, recipe, expected):
        wavelengths = np.arange(400.0, 2400.0, 10.0)
        assert is_finetunable(make_recipe(recipe, wavelengths)) is expected


def _brute_force_similar(base, local, library, n_neighbours):
    """Each local sample's nearest library rows by an explicit Mahalanobis distance.

    The distance is (x - y)' C^-1 (x - y) on the scores of the library's first m principal
    components, C their covariance matrix, m the count memory-based learning chooses.
    """

    def preprocessed(table):
        X = base.align(table)
        for _, step in base.pipeline.steps[:-1]:
            X = step.transform(X)
        return np.asarray(X, dtype=float)

    X_library, X_local = preprocessed(library), preprocessed(local)
    m = MemoryBasedLearning(k=n_neighbours).fit(X_library, library.targets(base.targets)).n_pcs_
    mean = X_library.mean(axis=0)
    axes = np.linalg.svd(X_library - mean, full_matrices=False)[2][:m].T
    scores_library, scores_local = (X_library - mean) @ axes, (X_local - mean) @ axes
    precision = np.linalg.inv(np.atleast_2d(np.cov(scores_library, rowvar=False)))
    chosen: set[int] = set()
    for query in scores_local:
        diff = scores_library - query
        distance = np.einsum("ij,jk,ik->i", diff, precision, diff)
        chosen |= {int(i) for i in np.argsort(distance)[:n_neighbours]}
    return sorted(chosen)


class TestSimilarityReplay:
    def test_similar_rows_match_a_brute_force_search(self, base, halves):
        library, local = halves
        few = local.subset(np.arange(5))
        rows = similar_rows(base, few, library, base.targets, n_neighbours=3)
        expected = _brute_force_similar(base, few, library, 3)
        assert rows.tolist() == expected
        assert 3 <= len(expected) <= 15  # at most 3 per local sample, shared ones once
        # Asking for more neighbours than the library holds gives the whole library.
        everything = similar_rows(base, few, library, base.targets, n_neighbours=100)
        assert everything.tolist() == list(range(library.n_samples))

    def test_fine_tunes_on_the_nearest_replay_rows(self, base, halves, monkeypatch):
        from specsoil.train import CNNRegressor

        library, local = halves
        seen = {}
        original = CNNRegressor.finetune

        def spy(self, X, y, **kwargs):
            seen.update(kwargs)
            return original(self, X, y, **kwargs)

        monkeypatch.setattr(CNNRegressor, "finetune", spy)
        tuned = finetune_model(
            base, local, base.targets, replay=library, replay_neighbours=2, max_epochs=1
        )
        expected = _brute_force_similar(base, local, library, 2)
        assert len(expected) < library.n_samples
        np.testing.assert_array_equal(seen["replay_y"], library.targets(base.targets)[expected])
        record = tuned.training["finetune"]["replay"]
        assert record["n_samples"] == len(expected)
        assert record["neighbours_per_local_sample"] == 2

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"replay_neighbours": 5}, "needs replay data"),
            ({"replay": "LIBRARY", "replay_neighbours": 0}, "integer >= 1; got 0"),
            ({"replay": "LIBRARY", "replay_neighbours": 2.5}, "integer >= 1; got 2.5"),
        ],
    )
    def test_rejects_bad_neighbour_counts(self, base, halves, kwargs, match):
        if "replay" in kwargs:
            kwargs = {**kwargs, "replay": halves[0]}
        with pytest.raises(SpecsoilError, match=match):
            finetune_model(base, halves[1], base.targets, max_epochs=1, **kwargs)
