"""The project code the executors import, as one zip for `--py-files` / `addPyFile`."""

from __future__ import annotations

import zipfile
from pathlib import Path

import batch
import contract

PACKAGES = (contract, batch)
ZIP_NAME = "credit_scoring_batch.zip"


def package_code(folder: Path) -> Path:
    """Write contract/ and batch/ (sources only) into folder/credit_scoring_batch.zip."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / ZIP_NAME
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for package in PACKAGES:
            root = Path(str(package.__file__)).resolve().parent
            for source in sorted(root.rglob("*.py")):
                archive.write(source, source.relative_to(root.parent).as_posix())
    return target
