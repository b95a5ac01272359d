"""`python -m export`: registered MLflow pipeline -> verified ONNX artifact under models/.

python -m export                      the champion -> models/credit_scoring.onnx (served)
python -m export --alias challenger   the challenger -> models/challenger.onnx (CHALLENGER_MODEL_PATH)
python -m export --promote            champion := challenger (old champion: previous-champion), then
                                      export the new champion; redeploy to serve it
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from mlflow.exceptions import MlflowException

from contract.names import REGISTERED_MODEL_NAME
from export.explanation import ExplanationError
from export.lifecycle import CHALLENGER, CHAMPION, alias_uri, artifact_names, promote
from export.parity import ParityError
from export.run import default_tracking_uri, export_model


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")  # progress
    parser = argparse.ArgumentParser(
        prog="python -m export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-uri", default=None, help=f"registered model to export (default {alias_uri(CHAMPION)})")
    parser.add_argument(
        "--alias",
        default=None,
        help=f"export the version carrying this alias of {REGISTERED_MODEL_NAME} (champion: the served files; "
        "another alias: <alias>.onnx and companions)",
    )
    parser.add_argument(
        "--promote",
        action="store_true",
        help=f"move the {CHAMPION} alias to the {CHALLENGER}'s version, then export the new champion",
    )
    parser.add_argument("--out", type=Path, default=Path("models"), help="output folder (default %(default)s)")
    parser.add_argument(
        "--parity-rows", type=int, default=100_000, help="unseen rows scored by both models (default %(default)s)"
    )
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or ./mlflow)")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # our own progress lines suffice
    if sum(x is not None and x is not False for x in (args.model_uri, args.alias, args.promote or None)) > 1:
        parser.error("give at most one of --model-uri, --alias and --promote")
    alias = args.alias or CHAMPION
    model_uri = args.model_uri or alias_uri(alias)
    if args.promote:
        import mlflow

        mlflow.set_tracking_uri(args.tracking_uri or default_tracking_uri())
        try:
            promotion = promote()
        except MlflowException as exc:
            print(f"error: cannot promote: no version carries @{CHALLENGER}? ({exc})", file=sys.stderr)
            return 2
        print(
            f"{promotion.name}: @{CHAMPION} -> version {promotion.champion} (previous: {promotion.previous})",
            file=sys.stderr,
        )
        alias, model_uri = CHAMPION, alias_uri(CHAMPION)
    try:
        result = export_model(model_uri, args.out, args.parity_rows, args.tracking_uri, artifact_names(alias))
    except (ParityError, ExplanationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (MlflowException, ValueError) as exc:
        print(f"error: cannot export {model_uri}: {exc}", file=sys.stderr)
        return 2
    print(result.artifact)
    return 0


if __name__ == "__main__":
    sys.exit(main())
