"""Builds that reproduce: every requirements-NAME.txt has a hash-pinned requirements-NAME.lock.

The .txt files are what people edit; `make lock` (scripts/lock.sh, uv) compiles each into a lock
that pins every package, transitive ones too, with the sha256 of each file; the Makefile, CI and
the Dockerfile install the locks with `pip install --require-hashes`. These tests read the files
as pip would, check the installed environment against the dev lock, and run `make lock`'s script
for real on a copy with a new requirements file.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
INPUTS = sorted(ROOT.glob("requirements-*.txt"))
DEV_LOCK = ROOT / "requirements-dev.lock"


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    marker: str | None
    hashes: tuple[str, ...]

    def applies_here(self) -> bool:
        return self.marker is None or Marker(self.marker).evaluate()


def read_lock(path: Path) -> list[Pin]:
    """The lock's entries: `name[extras]==version ; marker \\` then `--hash=sha256:...` lines."""
    pins: list[Pin] = []
    entry: list[str] = []
    for raw in path.read_text().splitlines() + [""]:
        line = raw.split("#", 1)[0].rstrip().rstrip("\\").strip()
        if line and not line.startswith("--hash"):
            if entry:
                pins.append(_pin(entry))
            entry = [line]
        elif line:
            entry.append(line)
    if entry:
        pins.append(_pin(entry))
    return pins


def _pin(entry: list[str]) -> Pin:
    requirement = Requirement(entry[0])
    (specifier,) = requirement.specifier  # exactly one `==` per entry
    assert specifier.operator == "==", entry[0]
    hashes = tuple(h.removeprefix("--hash=") for h in entry[1:])
    return Pin(canonicalize_name(requirement.name), specifier.version, str(requirement.marker or "") or None, hashes)


def top_level_pins(path: Path) -> dict[str, str]:
    """name -> version of the `name==version` lines of a .txt, following `-r` includes."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r"):
            pins |= top_level_pins(path.parent / line[2:].strip())
        elif line:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate():
                pins[canonicalize_name(requirement.name)] = next(iter(requirement.specifier)).version
    return pins


def includes(path: Path) -> set[str]:
    """The requirements files `path` includes, transitively."""
    found: set[str] = set()
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r"):
            name = line[2:].strip()
            found |= {name} | includes(path.parent / name)
    return found


def test_every_requirements_file_has_a_lock_with_a_hash_for_every_package() -> None:
    assert {p.name for p in INPUTS} >= {"requirements-serve.txt", "requirements-train.txt", "requirements-dev.txt"}
    for source in INPUTS:
        lock = source.with_suffix(".lock")
        assert lock.is_file(), f"{lock.name} is missing: run `make lock`"
        pins = read_lock(lock)
        assert pins, lock.name
        unhashed = [p.name for p in pins if not p.hashes or not all(h.startswith("sha256:") for h in p.hashes)]
        assert not unhashed, f"{lock.name}: no sha256 for {unhashed}"


@pytest.mark.parametrize("source", INPUTS, ids=lambda p: p.name)
def test_each_lock_is_fresh_for_its_inputs(source: Path) -> None:
    """A pin edited in a .txt but not re-locked would be silently ignored: the lock must agree."""
    locked = {p.name: p.version for p in read_lock(source.with_suffix(".lock")) if p.applies_here()}
    stale = {name: (version, locked.get(name)) for name, version in top_level_pins(source).items()}
    stale = {name: pair for name, pair in stale.items() if pair[0] != pair[1]}
    assert not stale, f"{source.name} vs its lock (wanted, locked): {stale}; run `make lock`"


def test_every_lock_pins_what_the_dev_lock_pins() -> None:
    """One version per package everywhere: the serve image runs exactly what the tests ran."""
    dev = {(p.name, p.marker): p.version for p in read_lock(DEV_LOCK)}
    dev_names = {name for name, _ in dev}
    for source in INPUTS:
        if source.name == "requirements-dev.txt":
            continue
        included = includes(ROOT / "requirements-dev.txt")
        assert source.name in included, f"requirements-dev.txt must include {source.name}"
        for pin in read_lock(source.with_suffix(".lock")):
            assert pin.name in dev_names, f"{source.with_suffix('.lock').name}: {pin.name} is not in the dev lock"
            versions = {v for (name, marker), v in dev.items() if name == pin.name}
            assert pin.version in versions, f"{pin.name}=={pin.version} but the dev lock has {versions}"


def test_the_serve_lock_holds_no_training_package() -> None:
    names = {p.name for p in read_lock(ROOT / "requirements-serve.lock")}
    assert {"fastapi", "onnxruntime", "uvicorn"} <= names
    assert not names & {"pandas", "scikit-learn", "lightgbm", "mlflow", "pyarrow", "onnx", "evidently"}


def test_this_environment_is_the_dev_lock_on_this_platform() -> None:
    """The platform markers resolve here: every pin that applies to this interpreter is installed."""
    wrong = {}
    for pin in read_lock(DEV_LOCK):
        if not pin.applies_here():
            continue
        try:
            installed = importlib.metadata.version(pin.name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != pin.version:
            wrong[pin.name] = (pin.version, installed)
    assert not wrong, f"locked vs installed: {wrong} (make .venv/.dev-installed installs the lock)"


def _recipes(target_prefix: str) -> str:
    text = (ROOT / "Makefile").read_text()
    match = re.search(rf"^{re.escape(target_prefix)}[^\n]*\n((?:\t[^\n]*\n)+)", text, re.MULTILINE)
    assert match, target_prefix
    return match.group(1)


def test_make_installs_the_locks_with_require_hashes() -> None:
    text = (ROOT / "Makefile").read_text()
    assert re.search(r"^PIP_INSTALL := .*--require-hashes", text, re.MULTILINE)
    assert "$(PIP_INSTALL) -r requirements-pip.lock" in _recipes("$(VENV)/bin/python:"), "pip itself first"
    assert "-r requirements-serve.lock" in _recipes("$(VENV)/.serve-installed:")
    assert "-r requirements-dev.lock" in _recipes("$(VENV)/.dev-installed:")
    assert not re.search(r"-r\s+requirements-\w+\.txt", text), "install from the locks, not the .txt inputs"
    assert "scripts/lock.sh" in _recipes("lock:")


@pytest.mark.slow
def test_make_lock_locks_a_new_requirements_file_the_same_way(tmp_path: Path) -> None:
    """A new requirements-NAME.txt included from the dev set gets its lock, pinned like the dev lock."""
    uv = Path(sys.executable).parent / "uv"
    if not uv.is_file():
        pytest.fail(f"uv not installed next to {sys.executable}: install requirements-dev.lock")
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "lock.sh", tmp_path / "scripts" / "lock.sh")
    for path in [*INPUTS, *ROOT.glob("requirements-*.lock")]:
        shutil.copy(path, tmp_path / path.name)
    tqdm = top_level_pins(ROOT / "requirements-dev.txt")["tqdm"]
    (tmp_path / "requirements-extra.txt").write_text(f"# a new set\n-r requirements-serve.txt\ntqdm=={tqdm}\n")
    dev_txt = tmp_path / "requirements-dev.txt"
    dev_txt.write_text(dev_txt.read_text() + "-r requirements-extra.txt\n")

    run = subprocess.run(
        ["bash", "scripts/lock.sh"], cwd=tmp_path, env={**os.environ, "UV": str(uv)},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "requirements-extra.txt -> requirements-extra.lock" in run.stdout
    extra = {p.name: p for p in read_lock(tmp_path / "requirements-extra.lock")}
    assert extra["tqdm"].version == tqdm and extra["tqdm"].hashes
    assert "fastapi" in extra  # the included serve set came along
    dev = {(p.name, p.version) for p in read_lock(tmp_path / "requirements-dev.lock")}
    assert {(p.name, p.version) for p in extra.values()} <= dev
    # Existing pins are kept: re-locking unchanged inputs changes nothing.
    assert (tmp_path / "requirements-serve.lock").read_text() == (ROOT / "requirements-serve.lock").read_text()
