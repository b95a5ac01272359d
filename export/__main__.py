"""`python -m export`: registered MLflow pipeline -> verified ONNX artifact under models/."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from mlflow.exceptions import MlflowException

from contract.names import DEFAULT_MODEL_URI
from export.explanation import ExplanationError
from export.parity import ParityError
from export.run import export_model


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")  # progress
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    parser.add_argument(
        "--model-uri", default=DEFAULT_MODEL_URI, help="registered model to export (default %(default)s)"
    )
    parser.add_argument("--out", type=Path, default=Path("models"), help="output folder (default %(default)s)")
    parser.add_argument(
        "--parity-rows", type=int, default=100_000, help="unseen rows scored by both models (default %(default)s)"
    )
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or ./mlflow)")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # our own progress lines suffice
    try:
        result = export_model(args.model_uri, args.out, args.parity_rows, args.tracking_uri)
    except (ParityError, ExplanationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (MlflowException, ValueError) as exc:
        print(f"error: cannot export {args.model_uri}: {exc}", file=sys.stderr)
        return 2
    print(result.artifact)
    return 0


if __name__ == "__main__":
    sys.exit(main())
