"""The project code the executors import, as one zip for `--py-files` / `addPyFile`.

Python never caches bytecode for modules it imports from a zip: every Python worker would
compile contract/ and batch/ from source (about half a second of CPU each). So the zip holds
each module's bytecode beside its source (`x.pyc` next to `x.py`, where zipimport looks), as
unchecked hash-based pycs of this interpreter; a worker on another Python version ignores them
(the magic number differs) and compiles the sources.
"""

from __future__ import annotations

import py_compile
import tempfile
import time
import zipfile
from pathlib import Path

import batch
import contract

PACKAGES = (contract, batch)
ZIP_NAME = "credit_scoring_batch.zip"


def package_code(folder: Path) -> Path:
    """Write contract/ and batch/ (sources and their bytecode) into folder/credit_scoring_batch.zip.

    The same sources give the same bytes (entries dated by their source), so shipping the zip
    again in the same Spark application (`addPyFile` refuses a changed file) works.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / ZIP_NAME
    with tempfile.TemporaryDirectory() as scratch, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for package in PACKAGES:
            root = Path(str(package.__file__)).resolve().parent
            for source in sorted(root.rglob("*.py")):
                name = source.relative_to(root.parent).as_posix()
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
