from __future__ import annotations

import os

import pytest

from specsoil._atomic import atomic_directory
from specsoil._errors import SpecsoilError
from specsoil._output_plan import plan_output_file, plan_output_folder


def listing(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "in" / "spectra.csv"
    path.parent.mkdir()
    path.write_text("sample_id,400\na,0.5\n")
    return path


class TestPlanOutputFile:
    def test_a_new_file_is_planned_as_an_absolute_path(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        assert plan_output_file("new/out.csv") == tmp_path / "new" / "out.csv"
        assert listing(tmp_path) == []  # planning creates nothing

    def test_an_existing_file_needs_overwrite(self, tmp_path):
        out = tmp_path / "out.csv"
        out.write_text("mine")
        with pytest.raises(SpecsoilError, match="already exists; pass --overwrite"):
            plan_output_file(out)
        assert plan_output_file(out, overwrite=True) == out
        assert out.read_text() == "mine"

    def test_a_folder_is_not_a_file(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        for out in (".", str(tmp_path)):
            with pytest.raises(SpecsoilError, match="is a folder"):
                plan_output_file(out, overwrite=True)

    @pytest.mark.parametrize("overwrite", [False, True])
    def test_an_input_is_never_an_output(self, data, overwrite):
        with pytest.raises(SpecsoilError, match="is also an input"):
            plan_output_file(data, inputs=[data], overwrite=overwrite)
        link = data.with_name("link.csv")
        link.symlink_to(data)
        with pytest.raises(SpecsoilError, match="is also an input"):
            plan_output_file(link, inputs=[data], overwrite=overwrite)
        hard = data.with_name("hard.csv")
        os.link(data, hard)
        with pytest.raises(SpecsoilError, match="is also an input"):
            plan_output_file(hard, inputs=[data], overwrite=overwrite)
        assert data.read_text() == "sample_id,400\na,0.5\n"

    def test_no_file_inside_an_input_folder(self, tmp_path):
        model = tmp_path / "model"
        model.mkdir()
        with pytest.raises(SpecsoilError, match="inside the input folder"):
            plan_output_file(model / "pred.csv", inputs=[model])

    def test_names_that_are_not_paths_are_not_inputs(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        assert plan_output_file("geeves", inputs=["geeves", None]) == tmp_path / "geeves"

    @pytest.mark.parametrize("out", ["", "  ", "/"])
    def test_empty_names_are_refused(self, out):
        with pytest.raises(SpecsoilError, match=r"empty|root"):
            plan_output_file(out)

    def test_nothing_is_written_under_a_file(self, data):
        with pytest.raises(SpecsoilError, match="is a file, so nothing can be written under it"):
            plan_output_file(data / "sub" / "out.csv")

    def test_an_unwritable_folder_is_refused(self, tmp_path, monkeypatch):
        def no_access(path, mode):
            return False

        monkeypatch.setattr(os, "access", no_access)
        with pytest.raises(SpecsoilError, match="permission denied"):
            plan_output_file(tmp_path / "a" / "out.csv")

    @pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere"
    )
    def test_a_read_only_folder_is_refused(self, tmp_path):
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        try:
            with pytest.raises(SpecsoilError, match="permission denied"):
                plan_output_file(locked / "out.csv")
        finally:
            locked.chmod(0o755)


class TestPlanOutputFolder:
    def test_a_new_or_empty_folder_is_fine(self, tmp_path):
        assert plan_output_folder(tmp_path / "new", kind="model") == tmp_path / "new"
        (tmp_path / "empty").mkdir()
        assert plan_output_folder(tmp_path / "empty", kind="model") == tmp_path / "empty"

    @pytest.mark.parametrize("overwrite", [False, True])
    def test_a_user_folder_is_refused(self, tmp_path, overwrite):
        mine = tmp_path / "mine"
        mine.mkdir()
        (mine / "notes.txt").write_text("keep me")
        with pytest.raises(SpecsoilError, match="specsoil did not write"):
            plan_output_folder(mine, kind="cv-report", overwrite=overwrite)
        assert (mine / "notes.txt").read_text() == "keep me"

    def test_a_previous_output_needs_overwrite_and_the_same_kind(self, tmp_path):
        out = tmp_path / "report"
        with atomic_directory(out, kind="cv-report") as tmp:
            (tmp / "metrics.json").write_text("{}")
        with pytest.raises(SpecsoilError, match="pass --overwrite"):
            plan_output_folder(out, kind="cv-report")
        assert plan_output_folder(out, kind="cv-report", overwrite=True) == out
        with pytest.raises(SpecsoilError, match="not a map"):
            plan_output_folder(out, kind="map", overwrite=True)

    def test_the_current_folder_is_refused(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        for out in (".", "..", str(tmp_path)):
            with pytest.raises(SpecsoilError, match="current folder"):
                plan_output_folder(out, kind="explain", overwrite=True)

    def test_a_folder_holding_an_input_is_refused(self, data):
        with pytest.raises(SpecsoilError, match="holds the input"):
            plan_output_folder(data.parent, kind="explain", inputs=[data], overwrite=True)

    def test_an_input_folder_is_refused(self, tmp_path):
        base = tmp_path / "base"
        with atomic_directory(base, kind="model") as tmp:
            (tmp / "manifest.json").write_text("{}")
        with pytest.raises(SpecsoilError, match="is also an input"):
            plan_output_folder(base, kind="model", inputs=[base], overwrite=True)
        with pytest.raises(SpecsoilError, match="inside the input folder"):
            plan_output_folder(base / "tuned", kind="model", inputs=[base])

    def test_a_file_is_not_a_folder(self, data):
        with pytest.raises(SpecsoilError, match="is a file, not a folder"):
            plan_output_folder(data, kind="model", overwrite=True)
        with pytest.raises(SpecsoilError, match="is a file, so nothing"):
            plan_output_folder(data / "model", kind="model")
