"""Shared by throughput.py and memory.py: run one measurement in a fresh Python process.

A fresh process per measurement gives clean peak-memory figures and lets one run compare the
library at two commits: ``package_root(rev)`` unpacks ``mmc_teach/`` of an earlier commit (``git
archive``) into a temporary folder that is put first on ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def package_root(rev: str | None) -> Path:
    """Folder whose ``mmc_teach/`` is the package at ``rev`` (``None``: this working tree)."""
    if rev is None:
        return REPO
    folder = Path(tempfile.mkdtemp(prefix=f"mmc_teach_{rev[:8]}_"))
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "mmc_teach"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def run_child(code: str, root: Path, threads: int = 2, timeout: float = 1800) -> dict:
    """Run ``code`` (which prints one JSON object on its last line) with ``root`` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(root), "MMC_TEACH_PROGRESS": "0",
           "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    prelude = f"import torch; torch.set_num_threads({threads})\n"
    out = subprocess.run([sys.executable, "-c", prelude + code], env=env, cwd=tempfile.gettempdir(),
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"measurement failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def load_average() -> str:
    """The machine's 1-minute load average, reported beside every absolute time."""
    return f"{os.getloadavg()[0]:.2f}"


def write_json(report: dict, path: str | os.PathLike) -> None:
    """Write ``report`` atomically: a reader never sees a half-written file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(report, indent=1) + "\n")
    os.replace(tmp, path)
