"""Installed size of the serve-only environment (what the Docker image's venv holds), by package.

    python -m benchmarks.env_size [--venv /tmp/serve-venv] [--requirements requirements-serve.txt]

Builds a fresh virtual environment from the requirements file the way the Dockerfile does (wheels
only, no cache), removes pip and setuptools as the image does, then measures site-packages in
total and per distribution (files listed in each distribution's RECORD). Also measures the
development environment (.venv) for comparison. Writes results/env_size.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.machine import machine_info
from benchmarks.models import PROJECT_ROOT, RESULTS_DIR


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python*/site-packages"))


def by_distribution(venv: Path) -> dict[str, int]:
    """Bytes per installed distribution, from each one's RECORD file (run inside that venv)."""
    script = (
        "import json, importlib.metadata as m, pathlib\n"
        "out = {}\n"
        "for d in m.distributions():\n"
        "    total = 0\n"
        "    for f in d.files or []:\n"
        "        p = pathlib.Path(d.locate_file(f))\n"
        "        if p.is_file():\n"
        "            total += p.stat().st_size\n"
        "    out[d.metadata['Name']] = total\n"
        "print(json.dumps(out))\n"
    )
    raw = subprocess.run([str(venv / "bin" / "python"), "-c", script], check=True, capture_output=True, text=True)
    sizes: dict[str, int] = json.loads(raw.stdout)
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))


def build(venv: Path, requirements: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "install", "--no-cache-dir", "--only-binary=:all:", "-r", str(requirements)], check=True)
    subprocess.run([*pip, "uninstall", "--yes", "pip", "setuptools"], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=None, help="where to build it (default: a temporary dir)")
    parser.add_argument("--requirements", type=Path, default=PROJECT_ROOT / "requirements-serve.txt")
    parser.add_argument("--reuse", action="store_true", help="measure --venv as it is, without rebuilding")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "env_size.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="serve-venv-") as tmp:
        venv = args.venv or Path(tmp) / "venv"
        if not args.reuse:
            build(venv, args.requirements)
        serve = {
            "site_packages_bytes": tree_bytes(site_packages(venv)),
            "venv_bytes": tree_bytes(venv),
            "by_distribution": by_distribution(venv),
        }
    dev_venv = PROJECT_ROOT / ".venv"
    dev = {"site_packages_bytes": tree_bytes(site_packages(dev_venv))} if dev_venv.is_dir() else {}
    artifact = PROJECT_ROOT / "models" / "credit_scoring.onnx"
    result = {
        "command": " ".join(["python -m benchmarks.env_size", *sys.argv[1:]]),
        "machine": machine_info(),
        "requirements": str(args.requirements.relative_to(PROJECT_ROOT)),
        "serve": serve,
        "dev": dev,
        "inference_code_bytes": sum(p.stat().st_size for p in (PROJECT_ROOT / "inference").rglob("*.py")),
        "model_bytes": artifact.stat().st_size if artifact.is_file() else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"serve venv: site-packages {serve['site_packages_bytes'] / 1e6:.1f} MB "
        f"(venv {serve['venv_bytes'] / 1e6:.1f} MB)"
    )
    if dev:
        print(f"dev venv:   site-packages {dev['site_packages_bytes'] / 1e6:.1f} MB")
    print("| package | MB |\n|---|---|")
    for name, size in list(serve["by_distribution"].items())[:15]:
        print(f"| {name} | {size / 1e6:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
