from __future__ import annotations

import pytest

from specsoil._errors import SpecsoilError
from specsoil.config import load_config


class TestLoadConfig:
    def test_defaults_without_file(self):
        config = load_config(None)
        assert config.seed == 0
        assert config.models == {}

    def test_reads_models_and_targets(self, tmp_path):
        path = tmp_path / "c.yaml"
        path.write_text(
            "targets: [clay]\nseed: 3\nmodels:\n  plsr:\n    params: {max_components: 12}\n"
        )
        config = load_config(path)
        assert config.targets == ["clay"]
        assert config.models["plsr"].params == {"max_components": 12}

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("targets: [clay]\nfold: 3\n", "fold: Extra inputs are not permitted"),
            ("seed: many\n", "seed"),
            ("- a\n- b\n", "mapping"),
            ("models: {plsr: {params: [1]}}", "models.plsr.params"),
            ("a: [\n", "not valid YAML"),
        ],
    )
    def test_bad_config_names_the_key(self, tmp_path, text, message):
        path = tmp_path / "bad.yaml"
        path.write_text(text)
        with pytest.raises(SpecsoilError, match=message):
            load_config(path)

    def test_missing_file(self, tmp_path):
        with pytest.raises(SpecsoilError, match="no such config file"):
            load_config(tmp_path / "none.yaml")
