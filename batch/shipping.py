"""The project code the executors import, as one zip for `--py-files` / `addPyFile`.

Python never caches bytecode for modules it imports from a zip: every Python worker would
compile contract/ and batch/ from source (about half a second of CPU each). So the zip holds
each module's bytecode beside its source (`x.pyc` next to `x.py`, where zipimport looks), as
unchecked hash-based pycs of this interpreter; a worker on another Python version ignores them
(the magic number differs) and compiles the sources.
"""

from __future__ import annotations

import hashlib
import importlib.util
import py_compile
import tempfile
import time
import zipfile
from pathlib import Path

import batch
import contract

PACKAGES = (contract, batch)
ZIP_NAME = "credit_scoring_batch.zip"


def _sources() -> list[tuple[str, Path]]:
    """(name in the zip, file) of every module of `PACKAGES`, in name order."""
    found = []
    for package in PACKAGES:
        root = Path(str(package.__file__)).resolve().parent
        found += [(source.relative_to(root.parent).as_posix(), source) for source in sorted(root.rglob("*.py"))]
    return found


def code_version() -> str:
    """A digest of what `package_code` zips (names, dates, sources) and of this interpreter's bytecode format."""
    digest = hashlib.sha256(importlib.util.MAGIC_NUMBER)
    for name, source in _sources():
        digest.update(f"{name}\0{int(source.stat().st_mtime)}\0".encode())
        digest.update(hashlib.sha256(source.read_bytes()).digest())
    return digest.hexdigest()[:16]


def package_code(folder: Path) -> Path:
    """Write contract/ and batch/ (sources and their bytecode) into folder/credit_scoring_batch.zip.

    The same sources give the same bytes (entries dated by their source), so shipping the zip
    again in the same Spark application (`addPyFile` refuses a changed file) works.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / ZIP_NAME
    with tempfile.TemporaryDirectory() as scratch, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, source in _sources():
            dated = time.localtime(source.stat().st_mtime)[:6]
            compiled = Path(scratch) / "module.pyc"
            py_compile.compile(
                str(source),
                cfile=str(compiled),
                dfile=name,
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
            for entry, content in ((name, source.read_bytes()), (name + "c", compiled.read_bytes())):
                archive.writestr(zipfile.ZipInfo(entry, date_time=dated), content, zipfile.ZIP_DEFLATED)
    return target
