"""The service against its two floors in process, without a socket: the time from the call into the
app to its response start (what a client waits for), and to its end (the bookkeeping after the
answer included), for the service, the work floor (`benchmarks/work_floor.py`) and the FastAPI no-op
floor (`benchmarks/noop_app.py`), interleaved round by round on the same held-out applicants.

    python -m benchmarks.floors_inprocess [--model-path ARTIFACT] [--rounds 5] [--requests 2000]

Over HTTP the same work costs more (cold caches between requests: benchmarks/RESULTS.md §13, §20);
in process the three are compared on their own CPU work, with the least noise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from benchmarks.asgi import AsgiDriver
from benchmarks.inprocess import KEY
from benchmarks.machine import code_fingerprint, machine_info
from benchmarks.models import PROJECT_ARTIFACT, RESULTS_DIR
from benchmarks.scoring_loop import load_bodies
from contract.names import PREDICT_PATH
from contract.scorer import Scorer

HEADERS = [(b"content-type", b"application/json"), (b"x-api-key", KEY.encode())]
APPS = ("service", "work-floor", "noop")


def compare(artifact: Path, rounds: int, requests: int, warmup: int = 200) -> dict[str, Any]:
    """Medians over `rounds` of each app's median microseconds to the response start and to the end."""
    scorer = Scorer(artifact)
    scorer.load()
    bodies = load_bodies(artifact, scorer.metadata.feature_spec)
    with tempfile.TemporaryDirectory(prefix="floors-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        (work / "spec.json").write_text(scorer.metadata.feature_spec.to_json())
        stack.enter_context(
            _environment(
                API_KEY=KEY,
                MODEL_PATH=str(artifact),
                PREDICTION_LOG_DIR=str(work / "records"),
                WORK_FLOOR_RECORD_DIR=str(work / "work-floor"),
                NOOP_SPEC_PATH=str(work / "spec.json"),
            )
        )
        drivers = {name: stack.enter_context(AsgiDriver(_app(name))) for name in APPS}
        found: dict[str, dict[str, list[float]]] = {name: {"to_start": [], "whole": []} for name in APPS}
        for _ in range(rounds):
            for name, driver in drivers.items():
                for i in range(warmup):
                    driver.post(PREDICT_PATH, bodies[i % len(bodies)], HEADERS)
                to_start, whole = [], []
                for i in range(requests):
                    status, _ = driver.post(PREDICT_PATH, bodies[i % len(bodies)], HEADERS)
                    if status != 200:
                        raise RuntimeError(f"{name} answered {status}")
                    to_start.append(driver.last_timing[0])
                    whole.append(driver.last_timing[1])
                found[name]["to_start"].append(1e6 * statistics.median(to_start))
                found[name]["whole"].append(1e6 * statistics.median(whole))
    summary = {
        name: {f"{key}_us": round(statistics.median(values), 1) for key, values in times.items()}
        | {f"{key}_us_rounds": [round(v, 1) for v in values] for key, values in times.items()}
        for name, times in found.items()
    }
    return {
        "artifact": str(artifact),
        "rounds": rounds,
        "requests": requests,
        "apps": summary,
        "service_over_noop_to_start": round(summary["service"]["to_start_us"] / summary["noop"]["to_start_us"], 3),
        "work_floor_over_noop_to_start": round(
            summary["work-floor"]["to_start_us"] / summary["noop"]["to_start_us"], 3
        ),
        "machine": machine_info(),
        "code": code_fingerprint(),
    }


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """The apps read their settings from the environment at start-up: set them, then put it back."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _app(name: str) -> Any:
    if name == "service":
        from inference.app import create_app

        return create_app()  # settings from the environment set above, as `python -m inference` reads them
    if name == "work-floor":
        from benchmarks.work_floor import WorkFloor

        return WorkFloor()
    from benchmarks.noop_app import create_app as create_noop

    return create_noop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floors_inprocess", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-path", type=Path, default=PROJECT_ARTIFACT)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per app and round")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "floors-inprocess.json")
    args = parser.parse_args(argv)
    result = compare(args.model_path, args.rounds, args.requests)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name, times in result["apps"].items():
        print(f"{name:11s} to the response start {times['to_start_us']:6.1f} µs, whole {times['whole_us']:6.1f} µs")
    print(f"service / no-op floor, to the response start: {result['service_over_noop_to_start']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
