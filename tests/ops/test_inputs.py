"""Data sources, targets and model specs: what every operation starts from."""

from __future__ import annotations

import pytest

from specsoil._errors import SpecsoilError
from specsoil.config import ModelConfig
from specsoil.ops import DataSource, resolve_models, resolve_targets
from specsoil.ops._inputs import load_source


class TestLoadSource:
    def test_a_bundled_dataset_brings_its_targets(self):
        loaded = load_source(DataSource(data="geeves"))
        assert loaded.dataset == "geeves"
        assert "clay_pct" in loaded.default_targets
        assert resolve_targets(loaded, ()) == list(loaded.default_targets)

    def test_scan_settings_on_a_table_are_refused(self, geeves):
        source = geeves.model_copy(update={"lab": "lab.csv"})
        with pytest.raises(SpecsoilError, match="apply to scan files"):
            load_source(source)


class TestResolveTargets:
    @pytest.mark.parametrize(
        ("requested", "message"),
        [(("nope",), "unknown target 'nope'"), (("sample_id",), "identifier")],
    )
    def test_bad_targets_name_the_file_and_the_choices(self, geeves, requested, message):
        loaded = load_source(geeves)
        with pytest.raises(SpecsoilError, match=message) as caught:
            resolve_targets(loaded, requested)
        assert "geeves_small.csv" in str(caught.value)


class TestResolveModels:
    def test_a_variant_keeps_its_recipe_and_overrides(self):
        variants = {"svr_snv": ModelConfig(recipe="svr", preprocessing=[{"name": "snv"}])}
        plsr, svr = resolve_models(["plsr", "svr_snv"], variants)
        assert (plsr.name, plsr.recipe, plsr.params) == ("plsr", "plsr", {})
        assert plsr.preprocessing  # the recipe's own steps
        assert (svr.name, svr.recipe, svr.preprocessing) == ("svr_snv", "svr", [{"name": "snv"}])

    def test_an_unknown_name_lists_the_choices(self):
        with pytest.raises(SpecsoilError, match=r"unknown model 'nope'; available models: \["):
            resolve_models(["nope"], {})
