"""A sign's label as text: the one normalisation applied wherever a label enters (the API, the
CLI, the importers), so that two labels that look the same are the same label.

NFC (``café`` typed with a combining accent is ``café``), trimmed, each run of spaces one space,
at most :data:`MAX_LABEL_CHARS` characters; control, format (zero-width, bidi overrides), private
use, unassigned and surrogate characters, and line or paragraph separators, are refused: they
would make ``ba\\u200bnk`` a second ``bank``, or reorder the text around a label on screen.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

MAX_LABEL_CHARS = 64
# Unicode general categories a label may not contain
REFUSED_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character (zero-width or bidi)",
    "Cs": "a surrogate",
    "Co": "a private-use character",
    "Cn": "an unassigned character",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}
_SPACES = re.compile(r"[^\S\n\r\t\x0b\x0c\x1c-\x1f\x85\u2028\u2029]+")  # runs of Zs


class LabelError(ValueError):
    """A sign's label that is empty, too long or holds characters a label may not have."""


def normalise_label(label: Any, max_chars: int = MAX_LABEL_CHARS) -> str:
    """``label`` as the one form every part of islr stores and compares; :class:`LabelError`
    (with what is wrong) when it is not text, empty, too long, or holds a refused character."""
    if not isinstance(label, str):
        raise LabelError(f"a sign's label must be text, not {type(label).__name__}")
    text = _SPACES.sub(" ", unicodedata.normalize("NFC", label)).strip()
    if not text:
        raise LabelError("a sign's label must not be empty")
    for char in text:
        category = unicodedata.category(char)
        if category in REFUSED_CATEGORIES:
            raise LabelError(
                f"a sign's label may not contain {REFUSED_CATEGORIES[category]} "
                f"(U+{ord(char):04X}): {text!r}"
            )
    if len(text) > max_chars:
        raise LabelError(f"a sign's label must be at most {max_chars} characters: {text[:80]!r}")
    return text


def label_lookup_key(label: str) -> str:
    """What two stored labels are compared by when one was written before the normalisation
    (NFC, trimmed, spaces collapsed; nothing refused)."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", label)).strip()
