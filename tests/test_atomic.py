from __future__ import annotations

import json
import os

import pytest

from specsoil._atomic import (
    MARKER,
    atomic_directory,
    atomic_path,
    atomic_write_text,
    inspect_folder,
    replace_problem,
)
from specsoil._errors import SpecsoilError


def listing(folder):
    """Every path under ``folder``, relative, hidden ones included."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def write_output(folder, files, kind="model"):
    """A specsoil output folder of ``kind`` holding ``files`` (name -> text)."""
    with atomic_directory(folder, kind=kind) as tmp:
        for name, text in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(text)


class TestAtomicPath:
    def test_success_renames_into_place(self, tmp_path):
        target = tmp_path / "sub" / "out.csv"
        atomic_write_text(target, "a,b\n")
        assert target.read_text() == "a,b\n"
        assert list(target.parent.iterdir()) == [target]

    def test_permissions_follow_the_umask(self, tmp_path):
        target = tmp_path / "out.csv"
        atomic_write_text(target, "x")
        mask = os.umask(0)
        os.umask(mask)
        assert target.stat().st_mode & 0o777 == 0o666 & ~mask

    def test_failure_leaves_the_old_file_and_no_temp(self, tmp_path):
        target = tmp_path / "out.csv"
        target.write_text("old")

        def write_half() -> None:
            with atomic_path(target) as tmp:
                tmp.write_text("half")
                raise RuntimeError("crash while writing")

        with pytest.raises(RuntimeError):
            write_half()
        assert target.read_text() == "old"
        assert list(tmp_path.iterdir()) == [target]

    def test_interrupt_removes_the_temp_and_the_folders_made_for_it(self, tmp_path):
        def interrupted() -> None:
            with atomic_path(tmp_path / "a" / "b" / "out.csv") as tmp:
                tmp.write_text("half")
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            interrupted()
        assert listing(tmp_path) == []


class TestAtomicDirectory:
    def test_marks_the_folder_with_its_kind_and_files(self, tmp_path):
        target = tmp_path / "model"
        write_output(target, {"manifest.json": "{}", "sub/part.bin": "x"})
        marker = json.loads((target / MARKER).read_text())
        assert marker["kind"] == "model"
        assert marker["files"] == ["manifest.json", "sub/part.bin"]
        assert listing(tmp_path) == [
            "model",
            f"model/{MARKER}",
            "model/manifest.json",
            "model/sub",
            "model/sub/part.bin",
        ]

    def test_replaces_a_previous_output_of_the_same_kind_and_leaves_nothing(self, tmp_path):
        target = tmp_path / "model"
        write_output(target, {"manifest.json": "old", "stale.txt": "x"})
        write_output(target, {"manifest.json": "new"})
        assert (target / "manifest.json").read_text() == "new"
        assert listing(tmp_path) == ["model", f"model/{MARKER}", "model/manifest.json"]

    def test_fills_an_empty_folder(self, tmp_path):
        target = tmp_path / "model"
        target.mkdir()
        write_output(target, {"manifest.json": "{}"})
        assert listing(target) == [MARKER, "manifest.json"]

    @pytest.mark.parametrize(
        ("prepare", "message"),
        [
            (lambda t: (t / "notes.txt").write_text("mine"), "specsoil did not write"),
            (lambda t: write_output(t, {"a.json": "{}"}, kind="map"), "not a model"),
            (
                lambda t: (write_output(t, {"a.json": "{}"}), (t / "mine.txt").write_text("x")),
                "mine.txt",
            ),
        ],
        ids=["user-folder", "other-kind", "user-file-added"],
    )
    def test_refuses_to_replace_what_specsoil_did_not_write(self, tmp_path, prepare, message):
        target = tmp_path / "out"
        target.mkdir()
        prepare(target)
        before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
        with pytest.raises(SpecsoilError, match=message):
            write_output(target, {"manifest.json": "{}"})
        assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == before
        assert [p.name for p in tmp_path.iterdir()] == ["out"]

    def test_refuses_a_file_in_its_place(self, tmp_path):
        target = tmp_path / "model"
        target.write_text("mine")
        with pytest.raises(SpecsoilError, match="is a file"):
            write_output(target, {"manifest.json": "{}"})
        assert target.read_text() == "mine"
        assert listing(tmp_path) == ["model"]

    def test_refuses_a_user_folder_that_appeared_during_the_work(self, tmp_path):
        target = tmp_path / "model"

        def user_folder_appears() -> None:
            with atomic_directory(target, kind="model") as tmp:
                (tmp / "manifest.json").write_text("{}")
                target.mkdir()
                (target / "notes.txt").write_text("mine")

        with pytest.raises(SpecsoilError, match="did not write"):
            user_folder_appears()
        assert listing(tmp_path) == ["model", "model/notes.txt"]

    @pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
    def test_failure_keeps_previous_directory(self, tmp_path, error):
        target = tmp_path / "model"
        write_output(target, {"manifest.json": "old"})

        def fail_while_writing() -> None:
            with atomic_directory(target, kind="model") as tmp:
                (tmp / "manifest.json").write_text("new")
                raise error

        with pytest.raises(error):
            fail_while_writing()
        assert (target / "manifest.json").read_text() == "old"
        assert listing(tmp_path) == ["model", f"model/{MARKER}", "model/manifest.json"]

    def test_a_failed_swap_puts_the_previous_folder_back(self, tmp_path, monkeypatch):
        target = tmp_path / "model"
        write_output(target, {"manifest.json": "old"})
        real_replace = os.replace
        calls = []

        def replace(src, dst):
            calls.append((src, dst))
            if len(calls) == 2:  # the new folder onto the final name
                raise KeyboardInterrupt
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace)
        with pytest.raises(KeyboardInterrupt):
            write_output(target, {"manifest.json": "new"})
        assert (target / "manifest.json").read_text() == "old"
        assert listing(tmp_path) == ["model", f"model/{MARKER}", "model/manifest.json"]


class TestInspectFolder:
    def test_lists_unknown_entries_beside_the_marked_ones(self, tmp_path):
        write_output(tmp_path / "out", {"a/b.txt": "x"}, kind="explain")
        (tmp_path / "out" / "a" / "c.txt").write_text("mine")
        state = inspect_folder(tmp_path / "out")
        assert state.kind == "explain"
        assert state.unknown == ("a/c.txt",)
        assert replace_problem(tmp_path / "out", "explain") is not None

    def test_an_unreadable_marker_counts_as_a_user_folder(self, tmp_path):
        (tmp_path / MARKER).write_text("not json")
        state = inspect_folder(tmp_path)
        assert state.kind is None
        assert state.unknown == (MARKER,)
        assert "did not write" in (replace_problem(tmp_path, "model") or "")

    def test_a_user_folder_is_not_walked(self, tmp_path):
        (tmp_path / "a" / "b").mkdir(parents=True)
        (tmp_path / "a" / "b" / "c.txt").write_text("mine")
        (tmp_path / "d.txt").write_text("mine")
        state = inspect_folder(tmp_path)
        assert state.kind is None
        assert state.entries == ("a", "d.txt")  # enough to refuse it; a home folder is large
        assert "2 entries: a, d.txt" in (replace_problem(tmp_path, "map") or "")
