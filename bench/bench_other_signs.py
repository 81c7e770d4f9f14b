"""Signs a model does not know, from real videos: each clip whole, and looped as a stream.

    python bench/bench_other_signs.py [--model include50] [--loops 3] [FILE ...]

The files default to the real signing in ``../shared/data/videos`` (ASL and unknown sign languages:
none is an INCLUDE sign): its videos, and its ``.pose`` files (MediaPipe output) that are not of
one of those videos. Each is read as ``islr predict`` reads it (MediaPipe Holistic
for a video), classified whole, then played ``--loops`` times back to back through the model's
stream segmenter at its own threshold, as the page does with a video file in a loop. Prints per file the whole clip's best guess and the
stream's events, then how many stream segments were named and how many were ``unknown``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO.parent / "shared/data/videos"


def default_files(folder: Path) -> list[Path]:
    videos = sorted(folder.glob("*.mp4"))
    # FOOTBALL.mediapipe_holistic.pose is FOOTBALL.mp4's landmarks: the same signing twice
    stems = {v.stem for v in videos}
    poses = [p for p in sorted(folder.glob("*.pose")) if p.name.split(".")[0] not in stems]
    return videos + poses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--model", default="include50")
    parser.add_argument("--loops", type=int, default=3)
    parser.add_argument("--threshold", type=float, help="default: the model's stream threshold")
    args = parser.parse_args()
    files = args.files or default_files(VIDEOS)
    if not files:
        print(f"no files given and none in {VIDEOS}", file=sys.stderr)
        return 2
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        print(f"not found: {', '.join(missing)}", file=sys.stderr)
        return 2

    from dataclasses import replace

    from islr.datasets.inputs import load_input
    from islr.errors import InputError, VideoError
    from islr.features import prepare_model_input
    from islr.inference import Engine
    from islr.landmarks import LandmarkFileError
    from islr.streaming import StreamSegmenter

    engine = Engine.load(args.model, threads=1)
    config = engine.stream
    if args.threshold is not None:
        config = replace(config, threshold=args.threshold)
    segmenter = StreamSegmenter(
        engine.model_layout, engine.labels, lambda f: engine.predict_batch([f])[0], config,
        engine.segmenter,
    )  # fmt: skip
    print(f"model {args.model}: {len(engine.labels)} signs, segmenter {config.segmenter}, "
          f"threshold {config.threshold}, {args.loops} loops per file")  # fmt: skip
    named = unknown = 0
    for path in files:
        try:
            seq = load_input(path, "holistic136")
        except (InputError, VideoError, LandmarkFileError) as e:
            print(f"\n{path.name}: skipped: {e}")
            continue
        frames = prepare_model_input(seq, engine.model_layout, None, engine.n_coords)
        probs = engine.predict_batch([frames])[0]
        best = int(probs.argmax())
        print(f"\n{path.name}: {len(frames)} frames at {seq.fps:.1f} fps; whole clip: "
              f"{engine.labels[best]} {probs[best]:.2f}")  # fmt: skip
        segmenter.reset()
        events = []
        for i in range(args.loops * len(frames)):
            events += segmenter.push(frames[i % len(frames)], i / seq.fps)
        events += segmenter.flush()
        for e in events:
            if e["type"] in ("sign", "unknown"):
                guess = e["top"][0]
                print(f"  {e['start']:5.2f}-{e['end']:5.2f} s  {e['type']:7}  "
                      f"best guess {guess['label']} {guess['prob']:.2f}")  # fmt: skip
                named += e["type"] == "sign"
                unknown += e["type"] == "unknown"
    total = named + unknown
    print(f"\nstream segments: {total}; named as a sign: {named}; unknown: {unknown} "
          f"({unknown / max(total, 1):.0%} rejected)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
