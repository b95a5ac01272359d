"""Model weight: the smallest LightGBM at equal AUC. Trains a few configurations on the same data.

    python -m benchmarks.model_weight [--rows 307511] [--configs baseline,lr0.1,...]

Same synthetic data, seed, split, feature pipeline and early stopping as `python -m training`; only
the LightGBM parameters change. For each configuration: trees kept by early stopping, leaves, test
AUC and its paired bootstrap difference to the baseline (same test rows resampled together), the
business cost at the threshold chosen on validation, the ONNX size, and the single-row and
1,000-row latency of the exported graph in onnxruntime with the Scorer's session options (timed
after all the training, every model in each round, so the machine's noise hits them alike).
Writes results/model_weight.json. Nothing is registered and the training defaults are untouched:
this only informs a proposal.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import onnxruntime as ort
from sklearn.metrics import roc_auc_score

from benchmarks.machine import machine_info, versions
from benchmarks.models import RESULTS_DIR
from contract.encoding import RowEncoder
from contract.metadata import INPUT_NAME, PROBABILITY_OUTPUT
from contract.scorer import Scorer
from export.convert import to_onnx
from export.parity import records
from training.data import split
from training.pipeline import DEFAULT_LGBM_PARAMS, build_pipeline, build_preprocessing
from training.schema import TARGET_COLUMN, build_feature_spec
from training.synthetic import generate
from training.threshold import best_threshold, business_cost
from training.train import TrainConfig, _features

logger = logging.getLogger(__name__)

# name -> (LightGBM parameter overrides, early-stopping patience)
CONFIGS: dict[str, tuple[dict[str, Any], int]] = {
    "baseline": ({}, 100),
    "patience30": ({}, 30),
    "lr0.1": ({"learning_rate": 0.1}, 100),
    "lr0.1-leaves15": ({"learning_rate": 0.1, "num_leaves": 15}, 100),
    "lr0.1-leaves31": ({"learning_rate": 0.1, "num_leaves": 31}, 100),
    "lr0.1-leaves7": ({"learning_rate": 0.1, "num_leaves": 7}, 100),
    "lr0.2-leaves15": ({"learning_rate": 0.2, "num_leaves": 15}, 50),
    "lr0.05-leaves15": ({"num_leaves": 15}, 100),
}


def latencies_us(
    sessions: dict[str, ort.InferenceSession], rows: np.ndarray, rounds: int = 20, calls: int = 300
) -> dict[str, dict[str, float]]:
    """Median single-row and 1,000-row session.run times per model, measured in interleaved rounds
    (every model in each round) so that the machine's noise hits them alike."""
    singles = [rows[i : i + 1] for i in range(1000)]
    block = rows[:1000]
    single: dict[str, list[float]] = {name: [] for name in sessions}
    batch: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(rounds):
        for name, session in sessions.items():
            run = session.run
            times = []
            for i in range(calls):
                started = time.perf_counter_ns()
                run([PROBABILITY_OUTPUT], {INPUT_NAME: singles[i % 1000]})
                times.append(time.perf_counter_ns() - started)
            single[name].append(float(np.median(times)))
            started = time.perf_counter_ns()
            run([PROBABILITY_OUTPUT], {INPUT_NAME: block})
            batch[name].append(float(time.perf_counter_ns() - started))
    return {
        name: {
            "single_us": round(float(np.median(single[name])) / 1e3, 2),
            "batch1000_us": round(float(np.median(batch[name])) / 1e3, 1),
        }
        for name in sessions
    }


def paired_bootstrap(
    y: np.ndarray, p_base: np.ndarray, p_other: np.ndarray, n: int = 200, seed: int = 0
) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() == y[idx].max():
            continue
        diffs.append(roc_auc_score(y[idx], p_other[idx]) - roc_auc_score(y[idx], p_base[idx]))
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"auc_diff_ci95_low": round(float(low), 5), "auc_diff_ci95_high": round(float(high), 5)}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")  # progress
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=TrainConfig.n_rows)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--out", default=str(RESULTS_DIR / "model_weight.json"))
    args = parser.parse_args(argv)
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    if names[0] != "baseline":
        names = ["baseline", *[n for n in names if n != "baseline"]]

    logger.info(f"generating {args.rows:,} rows (seed {args.seed}) and fitting the feature pipeline")
    frame = generate(args.rows, seed=args.seed)
    train_df, valid_df, test_df = split(frame, args.seed)
    spec = build_feature_spec()
    preprocessing = build_preprocessing(spec)
    x_train = preprocessing.fit_transform(_features(train_df))
    x_valid = preprocessing.transform(_features(valid_df))
    y_train, y_valid, y_test = (d[TARGET_COLUMN].to_numpy() for d in (train_df, valid_df, test_df))
    encoder = RowEncoder(spec)
    onnx_rows = encoder.encode_many(records(test_df.head(1000), spec))
    options = Scorer("unused.onnx").session_options()

    results: dict[str, dict[str, Any]] = {}
    base_test: np.ndarray | None = None
    sessions: dict[str, ort.InferenceSession] = {}
    for name in names:
        overrides, patience = CONFIGS[name]
        params = {**DEFAULT_LGBM_PARAMS, "random_state": args.seed, **overrides}
        logger.info(f"{name}: {overrides or 'training defaults'}, early stopping after {patience}")
        model = lgb.LGBMClassifier(**params)
        started = time.perf_counter()
        model.fit(
            x_train,
            y_train,
            eval_X=(x_valid,),
            eval_y=(y_valid,),
            eval_metric="auc",
            callbacks=[lgb.early_stopping(patience, verbose=False)],
        )
        fit_s = time.perf_counter() - started
        pipeline = build_pipeline(preprocessing, model)
        p_valid = pipeline.predict_proba(_features(valid_df))[:, 1]
        p_test = pipeline.predict_proba(_features(test_df))[:, 1]
        threshold = best_threshold(y_valid, p_valid).threshold
        onnx_bytes = to_onnx(pipeline).SerializeToString()
        sessions[name] = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        trees = int(model.best_iteration_ or params["n_estimators"])
        dump = model.booster_.dump_model(num_iteration=trees)
        leaves = sum(t["num_leaves"] for t in dump["tree_info"])
        row = {
            "params": overrides,
            "patience": patience,
            "trees": trees,
            "leaves": leaves,
            "auc_test": round(float(roc_auc_score(y_test, p_test)), 5),
            "auc_valid": round(float(roc_auc_score(y_valid, p_valid)), 5),
            "business_cost_test": business_cost(y_test, p_test, threshold),
            "onnx_bytes": len(onnx_bytes),
            "fit_s": round(fit_s, 1),
        }
        if base_test is None:
            base_test = p_test
        else:
            row.update(paired_bootstrap(y_test, base_test, p_test))
        results[name] = row
        logger.info(
            f"  {trees} trees, {leaves} leaves, AUC test {row['auc_test']:.4f}, ONNX {len(onnx_bytes) / 1e3:.0f} kB"
        )

    logger.info("timing every exported model in interleaved rounds")
    for name, timing in latencies_us(sessions, onnx_rows).items():
        results[name].update(timing)

    out = {
        "command": " ".join(["python -m benchmarks.model_weight", *sys.argv[1:]]),
        "machine": machine_info(),
        "versions": versions(),
        "rows": args.rows,
        "test_rows": len(test_df),
        "configs": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(
        "| config | trees | leaves | AUC test | ΔAUC vs baseline (95% CI) | cost test | ONNX kB | 1 row µs "
        "| 1000 rows µs |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        ci = f"[{r['auc_diff_ci95_low']:+.4f}, {r['auc_diff_ci95_high']:+.4f}]" if "auc_diff_ci95_low" in r else "-"
        print(
            f"| {name} | {r['trees']} | {r['leaves']} | {r['auc_test']:.4f} | {ci} | {r['business_cost_test']:.0f} "
            f"| {r['onnx_bytes'] / 1e3:.0f} | {r['single_us']} | {r['batch1000_us']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
