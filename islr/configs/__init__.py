"""The training recipes that ship with islr, one YAML file each (``default``, ``seed``).

Kept free of heavy imports, so ``islr train --help`` can list them without importing torch.
"""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG = "default"
# the learned segmenter's recipe (a folder of its own: not a classifier recipe)
SEGMENTER_CONFIG = CONFIG_DIR / "segmenter" / "include50.yaml"


def config_names() -> list[str]:
    """The shipped recipes' names (``islr/configs/NAME.yaml``)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
