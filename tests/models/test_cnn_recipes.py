import pytest
from sklearn.pipeline import Pipeline

from specsoil.models import available_recipes, make_recipe
from specsoil.preprocess import SpectralChannels


@pytest.mark.skipif("cnn1d" not in available_recipes(), reason="torch not installed")
class TestCNN1DRecipe:
    def test_feeds_three_channels_to_the_network(self, nirsoil_subset):
        X, Y, wavelengths = nirsoil_subset
        pipeline = make_recipe("cnn1d", wavelengths, params={"max_epochs": 1})
        assert [label for label, _ in pipeline.steps] == ["resample", "cnn1d"]
        inner = pipeline[-1]
        assert isinstance(inner, Pipeline)
        assert isinstance(inner[0], SpectralChannels)
        pipeline.fit(X[:40], Y[:40])
        bands = pipeline[0].transform(X[:1]).shape[1]
        assert inner[-1].input_shape_ == (3, bands)
        assert pipeline.predict(X[40:45]).shape == (5, Y.shape[1])
