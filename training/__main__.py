"""`python -m training`: generate (or read) data, train, log and register in MLflow."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from contract.features import Engineering
from training.data import DataError
from training.schema import build_feature_spec
from training.train import MODEL_NAME, TrainConfig, train


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")  # progress
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument("--data", type=Path, help="a real application_train.csv (default: synthetic data)")
    parser.add_argument("--rows", type=int, default=TrainConfig.n_rows, help="synthetic rows (default %(default)s)")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or ./mlflow)")
    parser.add_argument("--model-name", default=MODEL_NAME, help="registered model name (default %(default)s)")
    parser.add_argument(
        "--alias", default="champion", help="alias of the new version (challenger: leaves the champion alone)"
    )
    parser.add_argument("--max-trees", type=int, help="upper bound on trees (early stopping picks fewer)")
    parser.add_argument(
        "--protected",
        default=",".join(TrainConfig.protected_attributes),
        help="comma-separated fields accepted but never model inputs (default %(default)s; '' for none)",
    )
    parser.add_argument(
        "--no-fairness-comparison",
        action="store_true",
        help="skip training the comparison model that uses the protected fields (saves one training)",
    )
    args = parser.parse_args(argv)

    config = TrainConfig(
        data_path=args.data,
        n_rows=args.rows,
        seed=args.seed,
        tracking_uri=args.tracking_uri,
        model_name=args.model_name,
        alias=args.alias,
        protected_attributes=tuple(name.strip() for name in args.protected.split(",") if name.strip()),
        fairness_comparison=not args.no_fairness_comparison,
    )
    try:
        # An unknown field, or one the engineered features need, fails now, not after the data.
        Engineering.for_inputs(build_feature_spec(config.protected_attributes).input_names)
    except ValueError as exc:
        print(f"error: --protected: {exc}", file=sys.stderr)
        return 2
    if args.max_trees:
        config.lgbm_params["n_estimators"] = args.max_trees
    try:
        result = train(config)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"run_id": result.run_id, "model_version": result.model_version, **result.metrics}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
