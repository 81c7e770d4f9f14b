"""Install size and time of the core install vs the full one (core + [train] + [video]), each into
a fresh venv, measured side by side in one run.

    python bench/bench_install.py [--python python3.11] [--torch torch==2.13.0] [--torch-index URL]

Both install islr from this checkout (not editable, so the package and its page assets count).
The full install puts torch in first, as the README says (``--torch``; ``--torch-index``: PyTorch's
CPU-only index, where the default index would give the CUDA build). Size = disk usage of the venv's site-packages (as ``du``); time = wall time of the
pip commands, with pip's cache as it is on this machine (the first column says so). Prints a table
and the ratios full / core.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    name: str
    seconds: float
    site_mb: float
    n_packages: int
    torch: str


def disk_usage_mb(root: Path) -> float:
    """Like ``du -s``: allocated blocks of every file under ``root``, in MB."""
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(folder, name))
            total += st.st_blocks * 512
    return total / 1e6


def install(name: str, python: str, steps: list[list[str]]) -> Result:
    """Fresh venv, then one ``pip install`` per step (its arguments); time and size."""
    with tempfile.TemporaryDirectory(prefix=f"islr-bench-{name}-") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        vpy = str(venv / "bin" / "python")
        t0 = time.perf_counter()
        for packages in steps:
            cmd = [vpy, "-m", "pip", "install", "-q", *packages]
            subprocess.run(cmd, check=True, cwd=REPO)
        seconds = time.perf_counter() - t0
        (site,) = (venv / "lib").glob("python3*/site-packages")
        listing = subprocess.run(
            [vpy, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True
        )
        probe = "import importlib.metadata as m\ntry: print(m.version('torch'))\nexcept Exception: print('-')"
        torch = subprocess.run([vpy, "-c", probe], capture_output=True, text=True).stdout.strip()
        return Result(name, seconds, disk_usage_mb(site), len(listing.stdout.splitlines()), torch)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter for the venvs")
    parser.add_argument("--torch", default="torch==2.13.0", help="torch requirement, put in first")
    parser.add_argument("--torch-index", help="index for the torch step only (--index-url)")
    args = parser.parse_args()
    version = subprocess.run(
        [args.python, "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"machine: {os.cpu_count()} CPUs, Python {version} for the venvs, pip cache as is")
    index = ["--index-url", args.torch_index] if args.torch_index else []
    results = [
        install("core", args.python, [["."]]),
        install("full", args.python, [[*index, args.torch], [".[train,video]"]]),
    ]
    print(f"\n{'install':<28} {'time':>8} {'site-packages':>14} {'packages':>9}  torch")
    labels = {"core": "core: pip install islr", "full": "full: + [train,video]"}
    for r in results:
        print(
            f"{labels[r.name]:<28} {r.seconds:>6.1f} s {r.site_mb:>11.0f} MB {r.n_packages:>9}  "
            f"{r.torch}"
        )
    core, full = results
    print(
        f"\nfull / core: {full.seconds / core.seconds:.1f}x the time, "
        f"{full.site_mb / core.site_mb:.1f}x the disk ({full.site_mb - core.site_mb:.0f} MB more)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
