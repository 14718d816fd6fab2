"""Transfer evaluation: the summary, the report files and transfer_cv on real spectra."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from specsoil._errors import SpecsoilError
from specsoil.evaluate import TransferResult, transfer_cv
from specsoil.evaluate._transfer import RESULT_COLUMNS, transfer_markdown

ISSUE_KEYS = {"group", "strategy", "target", "rmse", "r2", "n_test"}


def _rows(table: dict[str, dict[str, float]], target: str = "clay") -> list[dict[str, Any]]:
    """Result rows from {group: {"global": rmse, "spiking plsr": rmse, ...}} (one repeat)."""
    rows = []
    for group, by_column in table.items():
        for column, value in by_column.items():
            strategy, _, model = column.partition(" ")
            rows.append(
                {
                    "group": group,
                    "strategy": strategy,
                    "model": model or "cnn1d",
                    "target": target,
                    "repeat": 0,
                    "rmse": value,
                    "r2": 1.0 - value / 10.0,
                    "n_test": 30,
                }
            )
    return rows


@pytest.fixture
def handmade() -> TransferResult:
    """Three groups: transfer beats local in all three, global in one, best spiking in two."""
    scores = {
        "A": {
            "global": 5.0,
            "local": 6.0,
            "transfer": 4.0,
            "spiking plsr": 4.5,
            "spiking mbl": 3.0,
        },
        "B": {
            "global": 3.0,
            "local": 6.0,
            "transfer": 4.0,
            "spiking plsr": 5.0,
            "spiking mbl": 4.2,
        },
        "C": {
            "global": 9.0,
            "local": 8.0,
            "transfer": 2.0,
            "spiking plsr": 2.5,
            "spiking mbl": 7.0,
        },
    }
    rows = _rows(scores)
    # A second repeat for group A: means over repeats decide (transfer 4 and 6 -> 5 > 4.5).
    second = [dict(r, repeat=1) for r in rows if r["group"] == "A"]
    for r in second:
        r["rmse"] = {"transfer": 6.0}.get(r["strategy"], r["rmse"])
    frame = pd.DataFrame(rows + second, columns=list(RESULT_COLUMNS))
    config = {"group_column": "site", "local_n": 20, "repeats": 2, "seed": 0, "strategy": "partial"}
    return TransferResult(frame, {"D": 7}, config, {"global": 1.0})


class TestSummary:
    def test_shares_use_the_mean_over_repeats(self, handmade):
        clay = handmade.summary()["targets"]["clay"]
        assert clay["n_groups"] == 3
        # Transfer means: A 5.0, B 4.0, C 2.0.
        assert clay["transfer_beats_local"] == pytest.approx(1.0)
        assert clay["transfer_beats_global"] == pytest.approx(1 / 3)  # only C (A ties at 5.0)
        assert clay["transfer_beats_spiking"] == pytest.approx(2 / 3)  # B (4.0 < 4.2) and C

    def test_margin_to_the_best_spiking_model(self, handmade):
        groups = {g["group"]: g for g in handmade.summary()["targets"]["clay"]["groups"]}
        assert groups["A"]["best_spiking_model"] == "mbl"
        assert groups["A"]["transfer_minus_best_spiking"] == pytest.approx(2.0)
        assert groups["B"]["best_spiking_model"] == "mbl"
        assert groups["B"]["transfer_minus_best_spiking"] == pytest.approx(-0.2)
        assert groups["C"]["best_spiking_model"] == "plsr"

    def test_overall_pools_targets(self, handmade):
        other = pd.DataFrame(_rows({"A": {"local": 1.0, "transfer": 2.0}}, "carbon"))
        both = dataclasses.replace(
            handmade, results=pd.concat([handmade.results, other], ignore_index=True)
        )
        summary = both.summary()
        assert summary["targets"]["carbon"]["transfer_beats_spiking"] is None  # no spiking
        assert summary["overall"]["n_groups"] == 4
        assert summary["overall"]["transfer_beats_local"] == pytest.approx(3 / 4)


class TestWrite:
    def test_files_and_json_shape(self, handmade, tmp_path):
        written = handmade.write(tmp_path / "out")
        assert [p.name for p in written] == ["transfer.json", "transfer.md", "transfer_rmse.png"]
        document = json.loads((tmp_path / "out" / "transfer.json").read_text())
        assert len(document["results"]) == len(handmade.results)
        for row in document["results"]:
            assert ISSUE_KEYS <= set(row)
            assert row["strategy"] in {"global", "local", "transfer", "spiking"}
        assert document["skipped_groups"] == [{"group": "D", "n": 7}]
        assert document["summary"]["targets"]["clay"]["transfer_beats_local"] == 1.0
        image = imread(tmp_path / "out" / "transfer_rmse.png")
        assert image.shape[0] > 100
        assert image.shape[1] > 100

    def test_markdown_table_shares_and_margins(self, handmade, tmp_path):
        handmade.write(tmp_path)
        text = (tmp_path / "transfer.md").read_text()
        assert "| group | n test | global | local | transfer | spiking plsr | spiking mbl |" in text
        assert "| C | 30 | 9 / 0.10 | 8 / 0.20 | 2 / 0.80 | 2.5 / 0.75 | 7 / 0.30 |" in text
        assert "beats local in 100% (3 of 3)" in text
        assert "best spiking model in 67% (2 of 3)" in text
        assert "- A: transfer 5 against mbl 3 (+2, +67%)" in text
        assert "- B:" not in text  # B beats its best spiking model
        assert "D (n=7)" in text

    def test_nan_scores_are_null_in_json(self, handmade, tmp_path):
        frame = handmade.results.copy()
        frame.loc[0, "r2"] = math.nan
        dataclasses.replace(handmade, results=frame).write(tmp_path)
        document = json.loads((tmp_path / "transfer.json").read_text())
        assert document["results"][0]["r2"] is None


@dataclasses.dataclass(frozen=True)
class Spec:
    name: str
    recipe: str
    preprocessing: list[dict[str, Any]]
    params: dict[str, Any]


TINY_CNN = Spec(
    "tiny_cnn",
    "cnn1d",
    [{"name": "resample", "step": 40, "method": "mean"}],
    {"max_epochs": 2, "batch_size": 16, "patience": None},
)


@pytest.fixture
def grouped(geeves_small):
    """The 60 real soils in sites a (28), b (27) and a too small site c (5)."""
    site = np.array(["a"] * 28 + ["b"] * 27 + ["c"] * 5)
    return dataclasses.replace(geeves_small, metadata=geeves_small.metadata.assign(site=site))


class TestTransferCVErrors:
    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"model": "plsr"}, "not a CNN"),
            ({"local_n": 1}, "local_n must be an integer >= 2"),
            ({"repeats": 0}, "repeats must be an integer >= 1"),
            ({"local_n": 40}, "no group in column 'site' has local_n"),
            ({"group_column": "region"}, "no column 'region'"),
            ({"spiking_models": ["plsr", "plsr"]}, "distinct names"),
            ({"spiking_models": ["nope"]}, "unknown recipe 'nope'"),
            ({"replay": "yes"}, "replay must be True or False"),
            ({"replay": True, "local_share": 0.0}, "local_share must be between 0 and 1"),
        ],
    )
    def test_rejects(self, grouped, kwargs, match):
        settings = {"group_column": "site", "targets": ["clay_pct"], "model": TINY_CNN, **kwargs}
        with pytest.raises(SpecsoilError, match=match):
            transfer_cv(grouped, **settings)


class TestTransferCV:
    def test_four_strategies_on_real_groups(self, grouped, caplog):
        pytest.importorskip("torch")
        calls = []
        with caplog.at_level(logging.WARNING):
            result = transfer_cv(
                grouped,
                group_column="site",
                targets=["clay_pct", "total_carbon_pct"],
                local_n=8,
                model=TINY_CNN,
                spiking_models=["plsr"],
                strategy="head",
                max_epochs=2,
                progress=lambda *args: calls.append(args),
            )
        assert result.skipped_groups == {"c": 5}
        assert "'c' has 5 samples" in caplog.text
        frame = result.results
        assert list(frame.columns) == list(RESULT_COLUMNS)
        # 2 groups x (global, local, transfer, spiking plsr) x 2 targets x 1 repeat.
        assert len(frame) == 16
        assert set(frame["strategy"]) == {"global", "local", "transfer", "spiking"}
        assert set(frame.loc[frame["strategy"] == "spiking", "model"]) == {"plsr"}
        assert set(frame.loc[frame["strategy"] != "spiking", "model"]) == {"tiny_cnn"}
        # Every strategy is scored on the same held-out samples: the group minus K = 8.
        assert set(frame.loc[frame["group"] == "a", "n_test"]) == {20}
        assert set(frame.loc[frame["group"] == "b", "n_test"]) == {19}
        assert np.isfinite(frame["rmse"]).all()
        # Spiking PLSR sees real clay signal (other site plus 8 local samples).
        spiking_clay = frame[(frame["strategy"] == "spiking") & (frame["target"] == "clay_pct")]
        assert (spiking_clay["r2"] > 0).all()
        assert calls[-1][1:] == (8, 8)  # 2 groups x (global + local + transfer + plsr)
        summary = result.summary()
        assert set(summary["targets"]) == {"clay_pct", "total_carbon_pct"}
        assert summary["overall"]["n_groups"] == 4

    def test_local_samples_are_seeded_per_group_and_repeat(self, grouped, monkeypatch):
        """The same K rows go to local, transfer and spiking; repeats draw new ones."""
        import specsoil.evaluate._transfer as module

        seen: list[tuple[str, tuple[str, ...]]] = []
        original = module._Runner.fit

        def spy(self, spec, rows):
            if spec.name != TINY_CNN.name or rows.size < 20:  # local and spiking fits
                ids = tuple(self.table.sample_ids.iloc[rows[-8:] if rows.size > 20 else rows])
                seen.append((spec.name, ids))
            return original(self, spec, rows)

        monkeypatch.setattr(module._Runner, "fit", spy)
        monkeypatch.setattr(module, "finetune_model", lambda base, *a, **k: base)
        subset = dataclasses.replace(
            grouped, metadata=grouped.metadata.assign(site=["a"] * 30 + ["b"] * 30)
        )
        transfer_cv(
            subset,
            group_column="site",
            targets=["clay_pct"],
            local_n=8,
            model=dataclasses.replace(TINY_CNN, params={**TINY_CNN.params, "max_epochs": 1}),
            spiking_models=["plsr"],
            repeats=2,
        )
        # Per group and repeat: the local fit, then spiking with the same 8 rows last.
        assert len(seen) == 8
        for k in range(0, 8, 2):
            assert seen[k][0] == "tiny_cnn"
            assert seen[k + 1][0] == "plsr"
            assert set(seen[k][1]) == set(seen[k + 1][1])
        assert set(seen[0][1]) != set(seen[2][1])  # repeat 2 draws other samples

    def test_replay_fine_tunes_with_the_other_groups(self, grouped, monkeypatch):
        """With replay the fine-tuning sees exactly the global model's training rows."""
        pytest.importorskip("torch")
        import specsoil.evaluate._transfer as module

        calls: list[dict[str, Any]] = []
        original = module.finetune_model

        def spy(base, local, targets, **kwargs):
            calls.append({"local": set(local.sample_ids), **kwargs})
            return original(base, local, targets, **kwargs)

        monkeypatch.setattr(module, "finetune_model", spy)
        result = transfer_cv(
            grouped,
            group_column="site",
            targets=["clay_pct"],
            local_n=8,
            model=TINY_CNN,
            spiking_models=["plsr"],
            max_epochs=1,
            batchnorm="adapt",
            replay=True,
            local_share=0.3,
        )
        sites = grouped.metadata["site"].to_numpy()
        ids = grouped.sample_ids.to_numpy()
        assert [c["replay"].source for c in calls] == [grouped.source] * 2
        for group, call in zip(["a", "b"], calls, strict=True):
            # The other groups, the too-small one included; never a row of the left-out one.
            assert set(call["replay"].sample_ids) == set(ids[sites != group])
            assert call["local"] <= set(ids[sites == group])
            assert (call["batchnorm"], call["local_share"]) == ("adapt", 0.3)
        config = result.config
        assert (config["finetune_replay"], config["finetune_local_share"]) == (True, 0.3)
        assert config["finetune_batchnorm"] == "adapt"
        assert np.isfinite(result.results["rmse"]).all()
        assert (
            "BatchNorm adapt, replaying the other groups' data with the K samples as 0.3 of "
            "each epoch" in transfer_markdown(result)
        )

    def test_without_replay_fine_tuning_sees_the_local_samples_only(self, grouped, monkeypatch):
        import specsoil.evaluate._transfer as module

        calls: list[dict[str, Any]] = []
        monkeypatch.setattr(module, "finetune_model", lambda base, *a, **k: calls.append(k) or base)
        result = transfer_cv(
            grouped,
            group_column="site",
            targets=["clay_pct"],
            local_n=8,
            model=dataclasses.replace(TINY_CNN, params={**TINY_CNN.params, "max_epochs": 1}),
            spiking_models=["plsr"],
            replay=False,
        )
        assert [c["replay"] for c in calls] == [None, None]
        assert [c["batchnorm"] for c in calls] == ["frozen", "frozen"]
        assert result.config["finetune_replay"] is False
        assert result.config["finetune_local_share"] is None

    def test_sparse_targets_draw_local_samples_with_every_lab_value(self, grouped):
        pytest.importorskip("torch")
        carbon = grouped.metadata["total_carbon_pct"].to_numpy(dtype=float).copy()
        carbon[::3] = np.nan  # a third of the carbon values missing, in every site
        sparse = dataclasses.replace(
            grouped, metadata=grouped.metadata.assign(total_carbon_pct=carbon)
        )
        result = transfer_cv(
            sparse,
            group_column="site",
            targets=["clay_pct", "total_carbon_pct"],
            local_n=8,
            model=TINY_CNN,
            spiking_models=["plsr"],
            max_epochs=1,
        )
        frame = result.results
        clay = frame[frame["target"] == "clay_pct"]
        carbon_rows = frame[frame["target"] == "total_carbon_pct"]
        # The 8 local samples all had both values, so the test sets keep every gap.
        assert set(clay.loc[clay["group"] == "a", "n_test"]) == {20}
        assert set(carbon_rows.loc[carbon_rows["group"] == "a", "n_test"]) == {20 - 10}
        assert np.isfinite(frame["rmse"]).all()
