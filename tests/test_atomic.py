from __future__ import annotations

import os

import pytest

from specsoil._atomic import atomic_directory, atomic_path, atomic_write_text


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


class TestAtomicDirectory:
    def test_replaces_existing_directory_whole(self, tmp_path):
        target = tmp_path / "model"
        target.mkdir()
        (target / "stale.txt").write_text("x")
        with atomic_directory(target) as tmp:
            (tmp / "manifest.json").write_text("{}")
        assert sorted(p.name for p in target.iterdir()) == ["manifest.json"]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]

    def test_failure_keeps_previous_directory(self, tmp_path):
        target = tmp_path / "model"
        target.mkdir()
        (target / "manifest.json").write_text("old")

        def fill_then_crash() -> None:
            with atomic_directory(target) as tmp:
                (tmp / "manifest.json").write_text("new")
                raise RuntimeError("crash")

        with pytest.raises(RuntimeError):
            fill_then_crash()
        assert (target / "manifest.json").read_text() == "old"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
