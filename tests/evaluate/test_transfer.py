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
from specsoil.evaluate._transfer import RESULT_COLUMNS, STRATEGIES, transfer_markdown

ISSUE_KEYS = {"group", "strategy", "target", "draw", "rmse", "r2", "n_test"}


def _rows(
    table: dict[str, dict[str, float]], target: str = "clay", draw: int = 0
) -> list[dict[str, Any]]:
    """Result rows from {group: {"global": rmse, "spiking plsr": rmse, ...}} (one draw)."""
    rows = []
    for group, by_column in table.items():
        for column, value in by_column.items():
            strategy, _, model = column.partition(" ")
            if strategy.startswith("transfer+"):
                strategy, model = "ensemble", strategy
            elif strategy == "spiking_average":
                model = "average"
            rows.append(
                {
                    "group": group,
                    "strategy": strategy,
                    "model": model or "cnn1d",
                    "target": target,
                    "draw": draw,
                    "rmse": value,
                    "r2": 1.0 - value / 10.0,
                    "n_test": 30,
                }
            )
    return rows


# Two draws of three groups. Transfer against spiking plsr, per (group, draw): A 4/4.5 win,
# 6/5 loss; B 4/5 win, 3/2 loss; C 2/2.5 win, 2/2 tie (no win).
DRAW_0 = {
    "A": {"global": 5.0, "local": 6.0, "transfer": 4.0, "spiking plsr": 4.5, "spiking mbl": 3.0,
          "spiking_average": 3.5, "transfer+plsr": 4.0, "transfer+mbl": 3.2},
    "B": {"global": 3.0, "local": 6.0, "transfer": 4.0, "spiking plsr": 5.0, "spiking mbl": 4.2,
          "spiking_average": 4.4, "transfer+plsr": 4.1, "transfer+mbl": 4.0},
    "C": {"global": 9.0, "local": 8.0, "transfer": 2.0, "spiking plsr": 2.5, "spiking mbl": 7.0,
          "spiking_average": 4.0, "transfer+plsr": 2.1, "transfer+mbl": 4.0},
}  # fmt: skip
DRAW_1 = {
    "A": {**DRAW_0["A"], "transfer": 6.0, "spiking plsr": 5.0},
    "B": {**DRAW_0["B"], "transfer": 3.0, "spiking plsr": 2.0},
    "C": {**DRAW_0["C"], "transfer": 2.0, "spiking plsr": 2.0},
}


@pytest.fixture
def handmade() -> TransferResult:
    """Three groups, two draws of the K local samples, two spiking models and ensembles."""
    rows = _rows(DRAW_0) + _rows(DRAW_1, draw=1)
    frame = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    config = {
        "group_column": "site",
        "local_n": 20,
        "draws": 2,
        "seed": 0,
        "strategy": "partial",
        "ensemble_weight": 0.5,
    }
    return TransferResult(frame, {"D": 7}, config, {"global": 1.0})


def _comparison(summary: dict[str, Any], subject: str, reference: str) -> dict[str, Any]:
    (found,) = [
        c for c in summary["comparisons"] if (c["subject"], c["reference"]) == (subject, reference)
    ]
    return found


class TestSummary:
    def test_wins_and_ratios_per_spiking_model_are_paired_per_draw(self, handmade):
        clay = handmade.summary()["targets"]["clay"]
        assert (clay["n_groups"], clay["n_draws"]) == (3, 2)
        plsr = _comparison(clay, "transfer", "spiking plsr")
        assert (plsr["wins"], plsr["n"]) == (3, 6)  # a tie is no win
        ratios_0 = [4 / 4.5, 4 / 5, 2 / 2.5]
        ratios_1 = [6 / 5, 3 / 2, 2 / 2]
        assert plsr["mean_ratio"] == pytest.approx(np.mean(ratios_0 + ratios_1))
        assert plsr["ratio_by_draw"] == {
            0: pytest.approx(np.mean(ratios_0)),
            1: pytest.approx(np.mean(ratios_1)),
        }
        spread = np.std([np.mean(ratios_0), np.mean(ratios_1)], ddof=1)
        assert plsr["ratio_sd_over_draws"] == pytest.approx(spread)
        mbl = _comparison(clay, "transfer", "spiking mbl")
        # mbl: A 4/3, 6/3 losses; B 4/4.2, 3/4.2 wins; C 2/7 wins twice.
        assert (mbl["wins"], mbl["n"]) == (4, 6)
        average = _comparison(clay, "transfer", "spiking average")
        assert (average["wins"], average["n"]) == (4, 6)  # B twice, C twice
        assert average["mean_ratio"] == pytest.approx(
            np.mean([4 / 3.5, 4 / 4.4, 2 / 4, 6 / 3.5, 3 / 4.4, 2 / 4])
        )

    def test_ensembles_are_compared_with_their_spiking_model(self, handmade):
        clay = handmade.summary()["targets"]["clay"]
        subjects = {(c["subject"], c["reference"]) for c in clay["comparisons"]}
        assert subjects == {
            ("transfer", "global"),
            ("transfer", "local"),
            ("transfer", "spiking plsr"),
            ("transfer", "spiking mbl"),
            ("transfer", "spiking average"),
            ("transfer+plsr", "spiking plsr"),
            ("transfer+mbl", "spiking mbl"),
        }
        ensemble = _comparison(clay, "transfer+plsr", "spiking plsr")
        # 4 < 4.5, 4.1 < 5, 2.1 < 2.5; then 4 < 5, 4.1 > 2, 2.1 > 2.
        assert (ensemble["wins"], ensemble["n"]) == (4, 6)

    def test_no_comparison_with_the_best_spiking_model_on_test(self, handmade):
        text = json.dumps(handmade.to_json()) + transfer_markdown(handmade)
        assert "best" not in text.lower()

    def test_means_and_spread_over_draws_per_group(self, handmade):
        groups = {g["group"]: g for g in handmade.summary()["targets"]["clay"]["groups"]}
        assert groups["A"]["transfer_rmse"] == pytest.approx(5.0)
        assert groups["A"]["rmse_sd"]["transfer"] == pytest.approx(np.std([4.0, 6.0], ddof=1))
        assert groups["A"]["rmse_sd"]["global"] == pytest.approx(0.0)
        assert groups["B"]["spiking_rmse"] == {"plsr": pytest.approx(3.5), "mbl": 4.2}
        assert groups["B"]["ensemble_rmse"]["transfer+mbl"] == pytest.approx(4.0)
        assert groups["C"]["spiking_average_rmse"] == pytest.approx(4.0)

    def test_shares_against_local_and_global(self, handmade):
        clay = handmade.summary()["targets"]["clay"]
        # Transfer against local: every pair but A's second (6 ties 6); against global:
        # A 4 < 5 and C twice.
        assert clay["transfer_beats_local"] == pytest.approx(5 / 6)
        assert clay["transfer_beats_global"] == pytest.approx(3 / 6)

    def test_overall_pools_targets(self, handmade):
        other = pd.DataFrame(_rows({"A": {"local": 1.0, "transfer": 2.0}}, "carbon"))
        both = dataclasses.replace(
            handmade, results=pd.concat([handmade.results, other], ignore_index=True)
        )
        summary = both.summary()
        carbon = summary["targets"]["carbon"]
        assert [(c["subject"], c["reference"]) for c in carbon["comparisons"]] == [
            ("transfer", "local")
        ]
        # The carbon frame has no spiking column at all; clay's pairs still count overall.
        assert summary["overall"]["n_groups"] == 4
        assert summary["overall"]["transfer_beats_local"] == pytest.approx(5 / 7)
        assert _comparison(summary["overall"], "transfer", "spiking plsr")["n"] == 6


class TestWrite:
    def test_files_and_json_shape(self, handmade, tmp_path):
        written = handmade.write(tmp_path / "out")
        assert [p.name for p in written] == ["transfer.json", "transfer.md", "transfer_rmse.png"]
        document = json.loads((tmp_path / "out" / "transfer.json").read_text())
        assert len(document["results"]) == len(handmade.results)
        for row in document["results"]:
            assert ISSUE_KEYS <= set(row)
            assert row["strategy"] in set(STRATEGIES)
        assert document["skipped_groups"] == [{"group": "D", "n": 7}]
        clay = document["summary"]["targets"]["clay"]
        assert clay["transfer_beats_local"] == pytest.approx(5 / 6)
        assert {"wins", "n", "share", "mean_ratio", "ratio_sd_over_draws"} <= set(
            clay["comparisons"][0]
        )
        image = imread(tmp_path / "out" / "transfer_rmse.png")
        assert image.shape[0] > 100
        assert image.shape[1] > 100

    def test_markdown_tables_and_comparisons(self, handmade, tmp_path):
        handmade.write(tmp_path)
        text = (tmp_path / "transfer.md").read_text()
        assert (
            "| group | n test | global | local | transfer | spiking plsr | spiking mbl | "
            "spiking average | transfer+plsr | transfer+mbl |"
        ) in text
        # Means over the two draws, with their sd; C's plsr: 2.5 and 2 -> 2.25 ± 0.35.
        assert (
            "| C | 30 | 9 ± 0 / 0.10 | 8 ± 0 / 0.20 | 2 ± 0 / 0.80 | 2.25 ± 0.35 / 0.78 |" in text
        )
        assert "| transfer | spiking plsr | 3 of 6 |" in text
        assert "| transfer+mbl | spiking mbl |" in text
        assert "## all targets" in text
        assert "transfer beats local in 83% (5 of 6) pairs" in text
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
            ({"draws": 0}, "draws must be an integer >= 1"),
            ({"replay": False, "replay_neighbours": 5}, "replay_neighbours .* needs replay"),
            ({"replay_neighbours": 0}, "replay_neighbours must be an integer >= 1"),
            ({"ensemble_weight": 1.5}, "ensemble_weight must be between 0 and 1"),
            ({"spiking_models": ["plsr", Spec("average", "mbl", [], {})]}, "spiking average"),
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
        # 2 groups x (global, local, transfer, spiking plsr, transfer+plsr) x 2 targets x 1
        # draw; one spiking model has no spiking average.
        assert len(frame) == 20
        assert set(frame["strategy"]) == {"global", "local", "transfer", "spiking", "ensemble"}
        assert set(frame.loc[frame["strategy"] == "spiking", "model"]) == {"plsr"}
        assert set(frame.loc[frame["strategy"] == "ensemble", "model"]) == {"transfer+plsr"}
        assert set(frame.loc[frame["strategy"] == "local", "model"]) == {"tiny_cnn"}
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

    def test_local_samples_are_seeded_per_group_and_draw(self, grouped, monkeypatch):
        """The same K rows go to local, transfer and spiking; draws draw new ones."""
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
            draws=2,
        )
        # Per group and draw: the local fit, then spiking with the same 8 rows last.
        assert len(seen) == 8
        for k in range(0, 8, 2):
            assert seen[k][0] == "tiny_cnn"
            assert seen[k + 1][0] == "plsr"
            assert set(seen[k][1]) == set(seen[k + 1][1])
        assert set(seen[0][1]) != set(seen[2][1])  # draw 2 has other samples

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


class _Constant:
    """A stand-in fitted model predicting one value for every sample and target."""

    def __init__(self, name: str, value: float) -> None:
        self.name, self.value = name, value

    def predict(self, table):
        return np.full((table.n_samples, 2), self.value)


# Stand-in predictions: the CNN (global and local) 20, fine-tuned 30, spiking plsr 40 and
# mbl 60, so every combination is known exactly.
CONSTANTS = {"tiny_cnn": 20.0, "transfer": 30.0, "plsr": 40.0, "mbl": 60.0}


@pytest.fixture
def stubbed(monkeypatch):
    """transfer_cv with constant stand-in models; records every table any model learns from.

    Each record is (what, sample ids): the local, global and spiking fits, the fine-tuning's
    local table and its replay table.
    """
    import specsoil.evaluate._transfer as module

    seen: list[tuple[str, set[str]]] = []

    def fit(self, spec, rows):
        seen.append((spec.name, set(self.table.sample_ids.iloc[rows])))
        return _Constant(spec.name, CONSTANTS[spec.name])

    def finetune(base, local, targets, *, replay, **kwargs):
        seen.append(("finetune local", set(local.sample_ids)))
        if replay is not None:
            seen.append(("finetune replay", set(replay.sample_ids)))
        return _Constant("transfer", CONSTANTS["transfer"])

    monkeypatch.setattr(module._Runner, "fit", fit)
    monkeypatch.setattr(module, "finetune_model", finetune)
    return seen


def _run(table, **kwargs):
    settings = {
        "group_column": "site",
        "targets": ["clay_pct", "total_carbon_pct"],
        "local_n": 8,
        "model": TINY_CNN,
        "spiking_models": ["plsr", "mbl"],
        **kwargs,
    }
    return transfer_cv(table, **settings)


class TestFairness:
    def test_draws_are_independent_and_reproducible_by_seed(self, grouped, stubbed):
        three = _run(grouped, draws=3).local_samples
        assert set(three) == {"a", "b"}
        for group, draws in three.items():
            assert len(draws) == 3
            assert all(len(set(d)) == 8 for d in draws)
            assert len({frozenset(d) for d in draws}) == 3  # each draw is a new sample
            members = set(grouped.sample_ids[grouped.metadata["site"] == group])
            assert all(set(d) <= members for d in draws)
        # The same seed gives the same draws; draw d does not depend on how many are made.
        assert _run(grouped, draws=3).local_samples == three
        two = _run(grouped, draws=2).local_samples
        assert {g: d[:2] for g, d in three.items()} == two
        other = _run(grouped, draws=3, seed=1).local_samples
        assert all(set(other[g][0]) != set(three[g][0]) for g in three)

    def test_no_model_ever_learns_from_a_test_sample(self, grouped, stubbed):
        result = _run(grouped, draws=2, replay=True)
        sites = grouped.metadata["site"].to_numpy()
        ids = grouped.sample_ids.to_numpy()
        # Fits come in order: per group the global model, then per draw the local model,
        # the fine-tuning (local and replay tables) and the spiking models.
        calls = iter(stubbed)
        for group in ("a", "b"):
            members = set(ids[sites == group])
            name, rows = next(calls)
            assert (name, rows & members) == ("tiny_cnn", set())
            for local in result.local_samples[group]:
                test = members - set(local)
                assert len(test) == int(result.results.query("group == @group")["n_test"].max())
                for _ in range(5):  # local, finetune local + replay, plsr, mbl
                    name, rows = next(calls)
                    assert not rows & test, name
                    assert rows & members <= set(local), name
        assert next(calls, None) is None

    def test_ensembles_and_spiking_average_use_fixed_weights(self, grouped, stubbed):
        result = _run(grouped, ensemble_weight=0.25)
        frame = result.results
        Y = grouped.targets(["clay_pct", "total_carbon_pct"])
        sites = grouped.metadata["site"].to_numpy()
        expected = {
            ("spiking_average", "average"): (40.0 + 60.0) / 2,
            ("ensemble", "transfer+plsr"): 0.25 * 30.0 + 0.75 * 40.0,
            ("ensemble", "transfer+mbl"): 0.25 * 30.0 + 0.75 * 60.0,
            ("transfer", "tiny_cnn"): 30.0,
        }
        for group in ("a", "b"):
            local = set(result.local_samples[group][0])
            test = (sites == group) & ~grouped.sample_ids.isin(local).to_numpy()
            for (strategy, model), value in expected.items():
                for j, target in enumerate(["clay_pct", "total_carbon_pct"]):
                    observed = Y[test, j]
                    observed = observed[np.isfinite(observed)]
                    chosen = (
                        (frame["group"] == group)
                        & (frame["strategy"] == strategy)
                        & (frame["model"] == model)
                        & (frame["target"] == target)
                    )
                    (row,) = frame[chosen].to_dict(orient="records")
                    assert row["rmse"] == pytest.approx(np.sqrt(np.mean((observed - value) ** 2)))
        assert result.config["ensemble_weight"] == 0.25

    def test_similarity_replay_setting_reaches_the_fine_tuning(self, grouped, monkeypatch):
        import specsoil.evaluate._transfer as module

        calls: list[dict[str, Any]] = []
        monkeypatch.setattr(module._Runner, "fit", lambda self, spec, rows: _Constant("x", 1.0))
        monkeypatch.setattr(
            module, "finetune_model", lambda base, *a, **k: calls.append(k) or _Constant("t", 1.0)
        )
        result = _run(grouped, replay=True, replay_neighbours=4)
        assert [c["replay_neighbours"] for c in calls] == [4, 4]
        assert result.config["finetune_replay_neighbours"] == 4
        assert "the 4 rows of the other groups' data nearest to each local sample" in (
            transfer_markdown(result)
        )
