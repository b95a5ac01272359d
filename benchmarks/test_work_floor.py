"""The work floor does the mandated work: it scores like the service, and writes the record before
it answers (benchmarks/work_floor.py). Driven in-process on the committed artifact, then once
under wrk beside the no-op floor, as `python -m benchmarks.http_load` runs it; and the in-process
comparison of the service with both floors (benchmarks/floors_inprocess.py) times all three."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from benchmarks.asgi import AsgiDriver
from benchmarks.floors_inprocess import HEADERS, compare
from benchmarks.http_load import run
from benchmarks.inprocess import KEY
from benchmarks.models import PROJECT_ARTIFACT
from benchmarks.scoring_loop import load_bodies
from benchmarks.work_floor import WorkFloor
from contract.names import PREDICT_PATH
from contract.scorer import Scorer


@pytest.fixture()
def floor_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    records = tmp_path / "records"
    monkeypatch.setenv("MODEL_PATH", str(PROJECT_ARTIFACT))
    monkeypatch.setenv("API_KEY", KEY)
    monkeypatch.setenv("WORK_FLOOR_RECORD_DIR", str(records))
    return records


def test_the_work_floor_scores_like_the_model_and_records_each_answer_first(floor_env: Path) -> None:
    scorer = Scorer(PROJECT_ARTIFACT)
    scorer.load()
    bodies = load_bodies(PROJECT_ARTIFACT, scorer.metadata.feature_spec, n=30)
    applicants = [{k: v for k, v in orjson.loads(b).items() if k != "application_id"} for b in bodies]
    expected = scorer.predict_proba(scorer.encoder.encode_many(applicants)).tolist()
    answers = []
    with AsgiDriver(WorkFloor()) as driver:
        for body in bodies:
            status, answer = driver.post(PREDICT_PATH, body, HEADERS)
            assert status == 200
            answers.append(orjson.loads(answer))
        assert driver.post(PREDICT_PATH, bodies[0], [(b"x-api-key", b"wrong")])[0] == 401
    assert [a["probability"] for a in answers] == expected
    refused = [a for a in answers if a["decision"] == "refused"]
    assert refused and all(a["reasons"] for a in refused)  # the artifact's explainer gives each refusal its reasons
    (segment,) = floor_env.glob("*.jsonl")
    records = [orjson.loads(line) for line in segment.read_bytes().splitlines()]
    assert [r["request_id"] for r in records] == [a["request_id"] for a in answers]
    assert [r["probability"] for r in records] == expected
    assert all(set(r["inputs"]) == set(orjson.loads(bodies[0])) - {"application_id"} for r in records)


def test_the_spinning_work_floor_stops_spinning_when_the_next_request_arrives(
    floor_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORK_FLOOR_SPIN_US", str(600 * 1_000_000))  # ten minutes: only an arrival ends it
    scorer = Scorer(PROJECT_ARTIFACT)
    scorer.load()
    first, second = load_bodies(PROJECT_ARTIFACT, scorer.metadata.feature_spec, n=2)
    floor = WorkFloor()
    with AsgiDriver(floor) as driver:

        async def two_requests() -> tuple[int, int]:
            spinning = asyncio.ensure_future(driver.request("POST", PREDICT_PATH, first, HEADERS))
            while not any(segment.stat().st_size for segment in floor_env.glob("*.jsonl")):
                await asyncio.sleep(0)  # its record written: it answers and spins without awaiting anything else
            floor.spin_s = 0.0  # the second answer does not spin: nothing would come after it
            second_status, _ = await driver.request("POST", PREDICT_PATH, second, HEADERS)
            first_status, _ = await asyncio.wait_for(spinning, timeout=30)  # its spin ended with the arrival
            return first_status, second_status

        assert driver.loop.run_until_complete(two_requests()) == (200, 200)


@pytest.mark.slow
@pytest.mark.usefixtures("wrk")  # fails where wrk is missing
def test_the_harness_runs_the_work_floor_beside_the_noop_floor() -> None:
    servers = ["work-floor", "noop"]
    result = run(servers, duration=1, connections=[1], rounds=1, warmup=0, out=None, model_path=PROJECT_ARTIFACT)
    for name in servers:
        assert result["servers"][name]["summary"]["errors"] == 0
    assert result["servers"]["work-floor"]["rounds"][0]["answers"]["checked"] == 20  # probabilities as expected
    assert result["ratios"]["work_floor_over_noop_c1_p50"] > 0


def test_the_in_process_comparison_times_all_three_apps(floor_env: Path) -> None:
    result = compare(PROJECT_ARTIFACT, rounds=1, requests=20, warmup=5)
    for name in ("service", "work-floor", "noop"):
        times = result["apps"][name]
        assert 0 < times["to_start_us"] <= times["whole_us"]  # the bookkeeping after the answer is in "whole"
    assert result["service_over_noop_to_start"] > 0
