"""A loop to profile in-process (`make profile` runs it under py-spy).

    python -m benchmarks.scoring_loop --mode hot-path --seconds 10
    python -m benchmarks.scoring_loop --mode asgi --seconds 10 [--fastapi-door]

`hot-path`: `inference.service.ScoringService.answer` for POST /predict, without server or
framework (key check, validation, encoding, onnxruntime, answer bytes, metrics, decision-record
hand-off), cycling through the held-out applicants of models/reference_sample.parquet.
`asgi`: the whole app (middleware, door, service, record on) driven in-process by benchmarks/asgi.py.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import orjson
import pandas as pd

from benchmarks.inprocess import KEY, answer_now, build_service, scoring_request
from benchmarks.models import PROJECT_ARTIFACT, REFERENCE_NAME
from contract.scorer import Scorer
from contract.spec import FeatureSpec
from export.parity import records


def load_bodies(artifact: Path, spec: FeatureSpec, n: int = 1000) -> list[bytes]:
    """POST /predict bodies: the first `n` held-out applicants of the artifact's reference sample."""
    frame = pd.read_parquet(artifact.parent / REFERENCE_NAME).head(n)
    return [orjson.dumps(r) for r in records(frame, spec)]


def hot_path(artifact: Path, seconds: float) -> int:
    """`ScoringService.answer` in a loop: everything a request costs but the server and the framework."""
    scorer = Scorer(artifact)
    scorer.load()
    bodies = load_bodies(artifact, scorer.metadata.feature_spec)
    with tempfile.TemporaryDirectory() as tmp:
        service = build_service(scorer, Path(tmp))
        done = 0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            for body in bodies:
                answer = answer_now(service, scoring_request(body))
                assert answer.status == 200
            done += len(bodies)
        service.recorder.close(5.0)
    return done


def asgi(artifact: Path, seconds: float, fast_door: bool) -> int:
    from benchmarks.asgi import AsgiDriver
    from inference.app import create_app
    from inference.settings import Settings

    scorer = Scorer(artifact)
    scorer.load()
    bodies = load_bodies(artifact, scorer.metadata.feature_spec)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(  # type: ignore[call-arg]
            api_key=KEY, model_path=artifact, prediction_log_dir=Path(tmp), fast_door=fast_door
        )
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
    parser.add_argument("--fastapi-door", action="store_true", help="asgi mode: FAST_DOOR=false (the FastAPI routes)")
    parser.add_argument("--model-path", type=Path, default=PROJECT_ARTIFACT)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    done = (
        hot_path(args.model_path, args.seconds)
        if args.mode == "hot-path"
        else asgi(args.model_path, args.seconds, not args.fastapi_door)
    )
    elapsed = time.perf_counter() - started
    print(f"{args.mode}: {done} requests in {elapsed:.1f} s, {1e6 * elapsed / done:.1f} us each")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
