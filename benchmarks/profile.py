"""py-spy flamegraphs of the server under load and of the in-process scoring path (`make profile`).

    python -m benchmarks.profile [--seconds 10] [--rate 200]

1. Server: our service (1 uvicorn worker, logging on) under `wrk -c16` with the same Lua script and
   bodies as the HTTP benchmark -> results/flamegraph-server.svg.
2. Scoring: `python -m benchmarks.scoring_loop --mode hot-path` (bytes -> pydantic -> encoder ->
   onnxruntime -> response bytes, and the prediction record's formatting) -> flamegraph-scoring.svg.

Each target is sampled by py-spy three times over the same window (non-blocking, so the samplers
do not pause it): an SVG flamegraph, the same stacks as text (collapsed), and the stacks of the
thread holding the GIL only. The text stacks are sorted into categories (parsing, validation,
encoding, ORT, logging, response, ...; the deepest matching frame wins) -> results/profile.json,
the numbers RESULTS.md reads next to the pictures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.http_load import LUA, N_BODIES, server_kinds, start, stop, write_inputs
from benchmarks.machine import code_fingerprint, machine_info, versions
from benchmarks.models import PROJECT_ARTIFACT, RESULTS_DIR, BenchModel

# (category, regex on a py-spy frame "function (path/file.py)"). A sample goes to the category of
# its deepest matching frame: a wrapper (uvicorn's run_asgi, the middleware) owns only the time
# spent in its own code, not the time of what it calls.
CATEGORIES: list[tuple[str, str]] = [
    ("uvicorn: HTTP parsing, socket reads and writes", r"\((uvicorn|uvloop|httptools|h11)/"),
    (
        "framework: Starlette/FastAPI routing, request, exception wrappers",
        r"\((starlette|fastapi|fastapi_offline|anyio)/|\(contextlib\.py|\(asyncio/",
    ),
    (
        "FastAPI dependencies (API key, scorer, settings lookups)",
        r"^solve_dependencies |\(inference/(deps|security)\.py|\(hashlib",
    ),
    ("our middleware: request id, context, timing", r"\(inference/(middleware|context)\.py|^uuid4 |\(uuid\.py"),
    ("our endpoint code (body read, glue)", r"\(inference/routes/"),
    ("validation: pydantic from JSON bytes", r"^(RequestModels\.parse_\w+|BaseModel\.model_validate\w*|validate) "),
    ("encoding: RowEncoder", r"\(inference/encoding\.py|^encode "),
    ("model: onnxruntime session.run", r"\(inference/scorer\.py|\(onnxruntime/|^run_model "),
    ("response: orjson + Response", r"^(_json|respond|Response\.\w+|JSONResponse\.\w+) "),
    ("metrics: prometheus_client", r"\(inference/metrics\.py|\(prometheus_client/"),
    (
        "decision record: formatting, write, shipper thread",
        r"\(inference/decisions/|\(contract/records\.py|\(psycopg/|\(threading\.py",
    ),
]
_COMPILED = [(name, re.compile(pattern)) for name, pattern in CATEGORIES]
OTHER = "other (interpreter, event loop, unattributed)"


def categorise(raw: Path) -> dict[str, Any]:
    """Collapsed stacks -> share of samples per category (deepest matching frame wins)."""
    totals: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        samples += n
        category = OTHER
        for frame in stack.split(";"):
            for name, pattern in _COMPILED:
                if pattern.search(frame):
                    category = name
                    break
        totals[category] += n
    shares = {name: round(100 * n / samples, 1) for name, n in totals.most_common()} if samples else {}
    return {"samples": samples, "percent": shares}


def sample(pid: int, seconds: int, rate: int, out_svg: Path, work: Path, label: str) -> dict[str, Any]:
    """Three concurrent py-spy samplers on `pid`; returns the categorised text profiles."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise RuntimeError("py-spy is not installed (it is in requirements-dev.txt)")
    common = [
        py_spy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(seconds),
        "--rate",
        str(rate),
        "--nonblocking",
        "--nolineno",
    ]
    raw, raw_gil = work / f"{label}.txt", work / f"{label}-gil.txt"
    samplers = [
        subprocess.Popen(
            [*common, "--format", "flamegraph", "-o", str(out_svg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        ),
        subprocess.Popen(
            [*common, "--format", "raw", "-o", str(raw)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        ),
        subprocess.Popen(
            [*common, "--gil", "--format", "raw", "-o", str(raw_gil)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        ),
    ]
    for sampler in samplers:
        _, err = sampler.communicate()
        if sampler.returncode != 0:
            raise RuntimeError(f"py-spy failed: {err.decode()[-1000:]}")
    # --nonblocking sampling can read a frame name mid-update; a stray NUL makes the SVG invalid XML.
    out_svg.write_bytes(out_svg.read_bytes().replace(b"\x00", b""))
    return {
        "all_threads": categorise(raw),
        "holding_the_gil": categorise(raw_gil),
        "svg": out_svg.name,
        "svg_bytes": out_svg.stat().st_size,
    }


def profile_server(
    work: Path, seconds: int, rate: int, connections: int, out_dir: Path, server: str = "service"
) -> dict[str, Any]:
    model = BenchModel("artifact", "", "", PROJECT_ARTIFACT, "", "")
    kinds = server_kinds(model, work / "feature_spec.json", work / "prediction-log")
    kind = kinds[server]
    files, _, _ = write_inputs(model, work, [kind])
    bodies_file = files[server][0]
    svg = "flamegraph-server.svg" if server == "service" else f"flamegraph-{server.replace(':', '-')}.svg"
    running = start(kind, work)
    try:
        url = f"http://127.0.0.1:{running.port}{kind.predict_path}"
        wrk = [
            "wrk",
            "-t1",
            f"-c{connections}",
            "--latency",
            "-s",
            str(LUA),
            url,
            "--",
            str(bodies_file),
            kind.api_key or "",
        ]
        subprocess.run([*wrk[:3], "-d2s", *wrk[3:]], check=True, capture_output=True)  # warm-up
        load = subprocess.Popen(
            [*wrk[:3], f"-d{seconds + 3}s", *wrk[3:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        time.sleep(1)
        result = sample(running.process.pid, seconds, rate, out_dir / svg, work, "server")
        result["server"] = server
        out, _ = load.communicate()
        line = next(x for x in out.decode().splitlines() if x.startswith("WRK_JSON "))
        stats = json.loads(line.removeprefix("WRK_JSON "))
        result["load"] = {
            "connections": connections,
            "requests_per_s": round(stats["requests"] / (stats["duration_us"] / 1e6), 1),
            "errors": sum(stats["errors"].values()),
        }
    finally:
        stop(running)
    return result


def profile_scoring(work: Path, seconds: int, rate: int, out_dir: Path) -> dict[str, Any]:
    loop = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.scoring_loop", "--mode", "hot-path", "--seconds", str(seconds + 4)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    time.sleep(3)  # imports and model load out of the window
    result = sample(loop.pid, seconds, rate, out_dir / "flamegraph-scoring.svg", work, "scoring")
    out, err = loop.communicate()
    if loop.returncode != 0:
        raise RuntimeError(f"scoring loop failed: {err[-2000:]}")
    result["loop"] = out.strip()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rate", type=int, default=200, help="samples per second (SVG size grows with it)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--server",
        default="service",
        help="which server to profile (a benchmarks.http_load name, e.g. variant:fast-path); "
        "other than `service`, only the server is profiled, into flamegraph-<name>.svg",
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("py-spy needs ptrace rights: run as root or with CAP_SYS_PTRACE", file=sys.stderr)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="profile-") as tmp:
        work = Path(tmp)
        server = profile_server(work, args.seconds, args.rate, args.connections, args.out_dir, args.server)
        if args.server != "service":
            name = args.server.replace(":", "-")
            (args.out_dir / f"profile-{name}.json").write_text(json.dumps(server, indent=2) + "\n")
            print("; ".join(f"{k} {v}%" for k, v in server["all_threads"]["percent"].items()))
            return 0
        scoring = profile_scoring(work, args.seconds, args.rate, args.out_dir)
    result = {
        "command": " ".join(["python -m benchmarks.profile", *sys.argv[1:]]),
        "machine": machine_info(),
        "versions": versions(),
        "code": code_fingerprint(),
        "config": {"seconds": args.seconds, "rate": args.rate, "bodies": N_BODIES},
        "server": server,
        "scoring": scoring,
    }
    (args.out_dir / "profile.json").write_text(json.dumps(result, indent=2) + "\n")
    for name in ("server", "scoring"):
        print(f"\n{name} ({result[name]['svg']}, {result[name]['svg_bytes'] / 1e3:.0f} kB)")
        for view in ("all_threads", "holding_the_gil"):
            shares = result[name][view]["percent"]
            print(f"  {view}: " + "; ".join(f"{k} {v}%" for k, v in shares.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
