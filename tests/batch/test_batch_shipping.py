"""The code zip the executors import: every module with its bytecode, one zip per version of the sources."""

from __future__ import annotations

import os
import types
import zipfile
from pathlib import Path

import pytest

from batch import shipping


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A two-module package standing in for contract/ and batch/."""
    root = tmp_path / "src" / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "mod.py").write_text("VALUE = 1\n")
    fake = types.ModuleType("pkg")
    fake.__file__ = str(root / "__init__.py")
    monkeypatch.setattr(shipping, "PACKAGES", (fake,))
    return root


def test_the_zip_holds_every_module_and_its_bytecode(package: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(shipping.package_code(tmp_path / "out")) as archive:
        assert sorted(archive.namelist()) == [
            "pkg/__init__.py",
            "pkg/__init__.pyc",
            "pkg/sub/mod.py",
            "pkg/sub/mod.pyc",
        ]


def test_the_code_version_follows_the_sources(package: Path) -> None:
    first = shipping.code_version()
    assert shipping.code_version() == first  # the same sources: the same zip is reused
    module = package / "sub" / "mod.py"
    stat = module.stat()
    module.write_text("VALUE = 2\n")
    os.utime(module, (stat.st_atime, stat.st_mtime))  # same date, other text
    assert shipping.code_version() != first
