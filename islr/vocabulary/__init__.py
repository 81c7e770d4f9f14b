"""A vocabulary that grows without retraining: signs added from a few takes, matched by embedding.

A model = the trained network (its K known signs, scored by its head) + a vocabulary of added
signs, each with its unit prototypes (one per take: the take's embedding), the embeddings of
augmented copies of its takes, and where its examples came from. Scoring (the same in the web
page's JavaScript)::

    L = log_softmax(logits)                     over the K known signs
    with a refitted head (the default: islr.vocabulary.fit, whenever the model stores its known
    signs' training embeddings):
    z = log_softmax(W e + c)                    rows: the K known signs, then each sign of the
                                                vocabulary (its takes)
    s_j = z_j - log(sum_known exp(z))           the row of vocabulary sign j
    L_c = log(exp(L_c) + exp(s_j))              a known sign c that also got examples (row j:
                                                the signer's own version of it)
    without one (older models): nearest take
    s_j = a * max_p (e . p) + b                 an added sign j, prototypes p
    L_c = max(L_c, a * max_p (e . p) + b)       a known sign c that also got added examples
    probabilities = softmax([L ; s])            labels: known (model order), then added

So the refitted head decides whether a sign is a known or an added one (and which added one); the
classifier still decides which known one. ``a, b`` (:class:`Calibration`) put the nearest-take
scores on the head's scale; the default was chosen on INCLUDE-50 by bench/bench_fewshot.py.
The vocabulary lives beside the model (``X.onnx`` -> ``X.vocab.json``), written atomically.
``model`` (the data model and its file), ``scoring`` (the rule above, the near-duplicate check),
``fit`` (the calibration and the refitted head). Only NumPy here (and scikit-learn for the fit):
the functions are pure and take embeddings, not models.
"""

from islr.vocabulary.fit import (
    ADDED_OFFSETS,
    added_offset,
    class_prototypes,
    fit_calibration,
    fit_head,
    known_embeddings_for_refit,
)
from islr.vocabulary.model import (
    VOCABULARY_SUFFIX,
    AddedSign,
    UnknownSignError,
    Vocabulary,
    VocabularyHead,
    check_label,
    load_vocabulary,
    prototype_of,
    save_vocabulary,
    unit_rows,
    vocabulary_path,
)
from islr.vocabulary.scoring import CheckResult, check_new_sign, log_softmax, vocabulary_log_scores

__all__ = [
    "ADDED_OFFSETS",
    "VOCABULARY_SUFFIX",
    "AddedSign",
    "CheckResult",
    "UnknownSignError",
    "Vocabulary",
    "VocabularyHead",
    "added_offset",
    "check_label",
    "check_new_sign",
    "class_prototypes",
    "fit_calibration",
    "fit_head",
    "known_embeddings_for_refit",
    "load_vocabulary",
    "log_softmax",
    "prototype_of",
    "save_vocabulary",
    "unit_rows",
    "vocabulary_log_scores",
    "vocabulary_path",
]
