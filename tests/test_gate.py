"""The hands gate: a clip with no hand in view is no sign; a signing clip passes."""

import numpy as np

from islr.inference.gate import SigningGate, hand_activity, is_signing
from islr.landmarks import LandmarkSequence
from tests.test_webcam import LEFT, RIGHT, _signer


def test_a_signer_passes_and_an_idle_person_does_not():
    seq = _signer()
    share, travel = hand_activity(seq)
    assert share == 1.0 and travel > 1.0  # the wrists travel more than a shoulder width
    assert is_signing(seq)
    idle = seq.data.copy()
    idle[:, LEFT] = np.nan
    idle[:, RIGHT] = np.nan
    assert not is_signing(LandmarkSequence(idle, seq.layout, extra=seq.extra))
    few = seq.data.copy()
    few[4:, LEFT] = np.nan  # a hand glimpsed in 4 of 40 frames
    few[:, RIGHT] = np.nan
    assert not is_signing(LandmarkSequence(few, seq.layout, extra=seq.extra))
    # a hand in view that never moves passes unless travel is asked for
    still = seq.data.copy()
    still[:] = still[:1]
    still_seq = LandmarkSequence(still, seq.layout, extra=seq.extra)
    assert is_signing(still_seq) and not is_signing(still_seq, SigningGate(min_travel=0.3))
