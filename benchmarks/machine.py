"""What the numbers were measured on: machine, load, library versions, processes' memory and CPU."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

LIBRARIES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "pydantic",
    "pydantic-core",
    "orjson",
    "numpy",
    "onnxruntime",
    "lightgbm",
    "scikit-learn",
    "pandas",
    "mlflow",
    "pytest-benchmark",
    "py-spy",
)
_TICKS = os.sysconf("SC_CLK_TCK")


def machine_info() -> dict[str, object]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_1m": os.getloadavg()[0],
    }


def versions() -> dict[str, str]:
    found = {}
    for lib in LIBRARIES:
        try:
            found[lib] = version(lib)
        except PackageNotFoundError:
            continue
    wrk = shutil.which("wrk")
    if wrk:
        banner = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.splitlines()
        found["wrk"] = banner[0].split()[1] if banner else "?"
    return found


def code_fingerprint(root: Path | None = None) -> dict[str, str]:
    """Which serving code was measured: a hash of inference/*.py (and the git commit, if any)."""
    root = root or Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted((root / "inference").rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    found = {"inference_sha256": digest.hexdigest()[:12]}
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "inference"], capture_output=True, text=True
        ).stdout.strip()
        found["git_commit"] = head.stdout.strip() + ("+dirty" if dirty else "")
    return found


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (from /proc/<pid>/task/<tid>/children)."""
    seen, todo = [], [pid]
    while todo:
        current = todo.pop()
        seen.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return seen


_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def _resident_bytes(pid: int) -> int:
    """One process's RSS (VmRSS), from its kernel counters (`statm`); OSError once it has exited."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE_BYTES


def rss_mb(pids: Iterable[int]) -> float:
    """RSS of these processes (a `process_tree`) in MB (10^6 bytes), from the kernel's counters: cheap
    enough to sample often."""
    total = 0
    for p in pids:
        try:
            total += _resident_bytes(p)
        except OSError:
            continue
    return round(total / 1e6, 1)


def memory_mb(pid: int) -> dict[str, float]:
    """RSS and PSS (shared pages divided among sharers) of a process tree, in MB (10^6 bytes).

    PSS walks every page table of every process (`smaps_rollup`): 15-30 ms of CPU for a Spark job's
    tree (benchmarks/RESULTS.md §24), so `rss_mb` is what to sample often."""
    rss_bytes = pss_kb = 0
    per_process = []
    for p in process_tree(pid):
        try:
            rss = _resident_bytes(p)
            rollup = Path(f"/proc/{p}/smaps_rollup").read_text()
        except OSError:
            continue
        pss = next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:"))
        rss_bytes += rss
        pss_kb += pss
        per_process.append(round(rss / 1e6, 1))
    return {
        "rss_mb": round(rss_bytes / 1e6, 1),
        "pss_mb": round(pss_kb * 1024 / 1e6, 1),
        "rss_mb_per_process": per_process,
    }


def voluntary_switches(pid: int) -> int:
    """How many times a process's main thread (the server's event loop) has gone to sleep so far."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("voluntary_ctxt_switches:", 1)[1].split()[0])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process tree so far."""
    total = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / _TICKS
