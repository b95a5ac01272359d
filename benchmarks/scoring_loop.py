"""A loop to profile in-process (`make profile` runs it under py-spy).

    python -m benchmarks.scoring_loop --mode hot-path --seconds 10
    python -m benchmarks.scoring_loop --mode asgi --seconds 10 [--variant no-log]

`hot-path`: the scoring path of POST /predict without the web framework: JSON bytes -> pydantic
(straight from bytes) -> RowEncoder -> onnxruntime -> decision -> response bytes, plus the prediction
record's formatting (which the log's writer thread does for every request), cycling through the
held-out applicants of models/reference_sample.parquet.
`asgi`: the whole app (middleware, dependencies, logging on) driven in-process by benchmarks/asgi.py.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import orjson
import pandas as pd

from benchmarks.models import PROJECT_ARTIFACT, REFERENCE_NAME
from contract.records import Decision
from contract.requests import build_request_models
from contract.scorer import Scorer
from contract.spec import FeatureSpec
from export.parity import records

KEY = "profile-key"


def load_bodies(artifact: Path, spec: FeatureSpec, n: int = 1000) -> list[bytes]:
    """POST /predict bodies: the first `n` held-out applicants of the artifact's reference sample."""
    frame = pd.read_parquet(artifact.parent / REFERENCE_NAME).head(n)
    return [orjson.dumps(r) for r in records(frame, spec)]


def validate(models: object, body: bytes) -> object:
    return models.parse_applicant(body)  # type: ignore[attr-defined]


def encode(scorer: Scorer, applicant: object) -> object:
    return scorer.encoder.encode_one(applicant.__dict__)


def run_model(scorer: Scorer, row: object) -> float:
    return float(scorer.predict_proba(row)[0])  # type: ignore[arg-type]


def respond(scorer: Scorer, probability: float) -> bytes:
    prediction = int(probability >= scorer.threshold)
    return orjson.dumps(
        {
            "prediction": prediction,
            "probability": probability,
            "decision": ("accepted", "refused")[prediction],
            "threshold": scorer.threshold,
            "model_version": scorer.metadata.model_version,
            "request_id": "0" * 32,
        }
    )


def log_record(scorer: Scorer, applicant: object, probability: float) -> bytes:
    entry = Decision(
        ts=time.time(),
        request_id="0" * 32,
        endpoint="/predict",
        status=200,
        latency_s=0.001,
        model_version=scorer.metadata.model_version,
        model_latency_s=2e-5,
        threshold=scorer.threshold,
        inputs=(applicant.__dict__,),
        probabilities=[probability],
        predictions=[0],
    )
    return b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in entry.records())


def hot_path(artifact: Path, seconds: float) -> int:
    scorer = Scorer(artifact)
    scorer.load()
    spec = scorer.metadata.feature_spec
    models = build_request_models(spec, 1000)
    bodies = load_bodies(artifact, spec)
    done = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for body in bodies:
            applicant = validate(models, body)
            probability = run_model(scorer, encode(scorer, applicant))
            respond(scorer, probability)
            log_record(scorer, applicant, probability)
        done += len(bodies)
    return done


def asgi(artifact: Path, seconds: float, variant: str | None) -> int:
    from benchmarks.asgi import AsgiDriver
    from inference.settings import Settings

    scorer = Scorer(artifact)
    scorer.load()
    bodies = load_bodies(artifact, scorer.metadata.feature_spec)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(api_key=KEY, model_path=artifact, prediction_log_dir=Path(tmp))  # type: ignore[arg-type]
        if variant:
            from benchmarks.variants import create_variant

            app = create_variant(variant, settings)
        else:
            from inference.app import create_app

            app = create_app(settings)
        headers = [(b"content-type", b"application/json"), (b"x-api-key", KEY.encode())]
        done = 0
        with AsgiDriver(app) as driver:
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                for body in bodies:
                    status, _ = driver.post("/predict", body, headers)
                    assert status == 200
                done += len(bodies)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["hot-path", "asgi"], default="hot-path")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--variant", default=None, help="asgi mode: a benchmarks/variants.py variant")
    parser.add_argument("--model-path", type=Path, default=PROJECT_ARTIFACT)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    done = (
        hot_path(args.model_path, args.seconds)
        if args.mode == "hot-path"
        else asgi(args.model_path, args.seconds, args.variant)
    )
    elapsed = time.perf_counter() - started
    print(f"{args.mode}: {done} requests in {elapsed:.1f} s, {1e6 * elapsed / done:.1f} us each")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
