"""Scoring continuous signing: transcripts against the true signs of a stream.

The sign error rate (SER) is the word error rate of sign recognition: the Levenshtein distance
(substitutions + deletions + insertions) between the emitted labels and the true ones, over the
number of true signs. :func:`segment_transcript` labels each found segment with the true sign it
overlaps most (``?`` for none), which scores the segmentation alone, classifier aside.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def align(truth: Sequence[str], hyp: Sequence[str]) -> tuple[int, list[tuple[int, int]]]:
    """Levenshtein distance of two label sequences and the ``(truth, hyp)`` index pairs that
    the alignment matches exactly."""
    n, m = len(truth), len(hyp)
    d = np.zeros((n + 1, m + 1), dtype=np.int64)
    d[:, 0], d[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            sub = d[i - 1, j - 1] + (truth[i - 1] != hyp[j - 1])
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, sub)
    pairs, i, j = [], n, m
    while i > 0 and j > 0:
        if d[i, j] == d[i - 1, j - 1] + (truth[i - 1] != hyp[j - 1]):
            if truth[i - 1] == hyp[j - 1]:
                pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif d[i, j] == d[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return int(d[n, m]), pairs[::-1]


def sign_error_rate(truths: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]]) -> float:
    """Summed Levenshtein distances over the number of true signs, over several streams."""
    edits = sum(align(t, h)[0] for t, h in zip(truths, hyps, strict=True))
    return edits / max(1, sum(len(t) for t in truths))


def segment_transcript(
    truth: Sequence[tuple[str, float, float]], segments: Sequence[tuple[float, float]]
) -> list[str]:
    """Each found segment ``(start, end)`` -> the label of the true sign ``(label, start, end)``
    it overlaps most, ``?`` when it overlaps none."""
    out = []
    for start, end in segments:
        overlaps = [min(end, e) - max(start, s) for _, s, e in truth]
        best = int(np.argmax(overlaps)) if overlaps else -1
        out.append(truth[best][0] if best >= 0 and overlaps[best] >= 0 else "?")
    return out
