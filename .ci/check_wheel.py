"""Fail loudly when a built islr wheel lacks the web page's vendored assets.

Usage: python .ci/check_wheel.py dist/islr-*.whl  (run by `make wheel`, after `make web`)
The wheel must hold exactly the files web/build.sh put into islr/serving/static/vendor/.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

VENDOR = "islr/serving/static/vendor/"


def main(wheel: str) -> int:
    root = Path(__file__).resolve().parents[1]
    on_disk = sorted(
        p.relative_to(root).as_posix() for p in (root / VENDOR).rglob("*") if p.is_file()
    )
    if not on_disk:
        print(f"error: {VENDOR} is empty: run `make web` (needs npm) before building the wheel")
        return 1
    with zipfile.ZipFile(wheel) as z:
        in_wheel = sorted(n for n in z.namelist() if n.startswith(VENDOR))
    missing = sorted(set(on_disk) - set(in_wheel))
    if missing:
        print(f"error: {wheel} lacks {len(missing)} of the page's assets, e.g. {missing[0]}")
        print("(a stale build/ folder or package-data in pyproject.toml not covering them?)")
        return 1
    size = sum(z.getinfo(n).file_size for n in in_wheel) / 1e6
    print(f"{wheel}: carries the page's {len(in_wheel)} vendored files ({size:.1f} MB)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
