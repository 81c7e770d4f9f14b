"""Extraction accuracy: ``islr.extract`` on FOOTBALL.mp4 vs the reference MediaPipe Holistic
output shipped with it (``FOOTBALL.mediapipe_holistic.pose``).

    python bench/bench_extract_accuracy.py

Prints the mean x, y distance (image units) per component over the frames where both detected
it, and in how many of the reference's frames each hand was found. The same comparison, with
bounds, is tests/test_extract.py::test_football_matches_reference_holistic_output.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

from reference_pose import found_frames, mean_xy_distance, reference_components  # noqa: E402

VIDEOS = REPO_ROOT.parent / "shared" / "data" / "videos"


def main() -> None:
    from islr.extract import extract_video
    from islr.landmarks import HOLISTIC136

    video = VIDEOS / "FOOTBALL.mp4"
    reference, (width, height) = reference_components(VIDEOS / "FOOTBALL.mediapipe_holistic.pose")
    seq = extract_video(video)
    print(f"{video.name}: {seq.n_frames} frames, {width}x{height}, {seq.extractor}")
    print("mean x, y distance to the reference (image units), frames where both detected it:")
    pose, _ = mean_xy_distance(seq.component("pose"), reference["POSE_LANDMARKS"])
    print(f"  pose        {pose:.4f}")
    for ours, theirs in (
        ("left_hand", "LEFT_HAND_LANDMARKS"),
        ("right_hand", "RIGHT_HAND_LANDMARKS"),
    ):
        dist, both = mean_xy_distance(seq.component(ours), reference[theirs])
        in_ref = int(found_frames(reference[theirs]).sum())
        print(f"  {ours:11s} {dist:.4f}   found in {int(both.sum())}/{in_ref} reference frames")
    face_points = next(p for p in HOLISTIC136.parts if p.component == "face").indices
    face, _ = mean_xy_distance(seq.component("face"), reference["FACE_LANDMARKS"][:, face_points])
    print(f"  face (61)   {face:.4f}")


if __name__ == "__main__":
    main()
