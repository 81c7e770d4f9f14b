// Twin of islr/inference/enroll.py: a recorded take cut to the frames of its one sign.

/**
 * Which recorded frames make one take: the stream segmenter's segment (sign or unknown event,
 * {start, end} in the frames' clock) that overlaps the recording window [from, to] the most (the
 * longest on a tie); without one, the frames where a hand was seen. times[i], hands[i]: each
 * recorded frame's time and whether a hand was detected. -> {indices, start, end, source} where
 * source is "segmenter" | "hands" | "none".
 */
export function cutTake(times, hands, segments, from, to, eps = 1e-3) {
  const overlap = (s) => Math.min(s.end, to) - Math.max(s.start, from);
  const candidates = segments
    .filter((s) => Number.isFinite(s.start) && Number.isFinite(s.end) && overlap(s) >= 0)
    .sort((a, b) => overlap(b) - overlap(a) || b.end - b.start - (a.end - a.start));
  if (candidates.length) {
    const { start, end } = candidates[0];
    const indices = times.flatMap((t, i) => (t >= start - eps && t <= end + eps ? [i] : []));
    if (indices.length) return { indices, start, end, source: "segmenter" };
  }
  const indices = times.flatMap((t, i) => (hands[i] && t >= from - eps && t <= to + eps ? [i] : []));
  if (!indices.length) return { indices, start: null, end: null, source: "none" };
  return { indices, start: times[indices[0]], end: times[indices[indices.length - 1]], source: "hands" };
}
