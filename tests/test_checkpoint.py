"""Checkpoints describe themselves like ONNX files do: a model on a layout that only the training
process registered loads, predicts and exports in a fresh process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np

from tests.conftest import REPO_ROOT, need_torch


def test_checkpoint_on_a_custom_layout_loads_in_a_fresh_process(tmp_path):
    need_torch()
    train_side = textwrap.dedent(f"""
        import torch
        from islr.features import FeatureConfig
        from islr.landmarks import Layout, LayoutPart, register_layout
        from islr.models import ModelConfig, ModelSpec, save_checkpoint

        hands = tuple(range(21))
        register_layout(Layout("my_hands_shoulders", (
            LayoutPart("left_hand", hands), LayoutPart("right_hand", hands),
            LayoutPart("pose", (11, 12, 13, 14, 15, 16)))))
        torch.manual_seed(0)
        spec = ModelSpec(
            ModelConfig("conv_transformer", {{"dim": 16, "stages": 1, "conv_blocks": 1,
                                               "heads": 2}}),
            FeatureConfig(seq_len=8, points={{"left_hand": "all", "right_hand": "all",
                                              "pose": [11, 12, 15, 16]}}),
            "my_hands_shoulders", 2, ["a", "b", "c"])
        save_checkpoint({str(tmp_path / "best.pt")!r}, spec, spec.build().state_dict())
    """)
    fresh_side = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        from islr.export import export_onnx
        from islr.inference import Engine
        from islr.landmarks import layout_names
        assert "my_hands_shoulders" not in layout_names()
        x = np.random.default_rng(0).random((2, 8, 48, 2), dtype=np.float32)
        pt = Engine.load({str(tmp_path)!r})
        onnx_path = export_onnx({str(tmp_path)!r}, {str(tmp_path / "m.onnx")!r}).path
        ox = Engine.load(onnx_path)
        assert pt.metadata["layout"] == ox.metadata["layout"]
        print(json.dumps({{"layout": pt.metadata["layout"], "n_points": pt.n_points,
                           "diff": float(np.abs(pt.logits_batch(x) - ox.logits_batch(x)).max())}}))
    """)
    for code in (train_side, fresh_side):
        done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
    import json

    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["layout"]["name"] == "my_hands_shoulders" and result["n_points"] == 48
    assert [p["component"] for p in result["layout"]["parts"]] == [
        "left_hand", "right_hand", "pose",
    ]  # fmt: skip
    assert result["diff"] < 1e-4
    assert np.isfinite(result["diff"])
