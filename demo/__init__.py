"""hmmn_deploy.demo: the demo model (the small configuration trained on generated videos) and
the generator of those videos.

The weights ship in this package (weights/hmmn_small_demo.pth, with the command and settings
that trained them in weights/hmmn_small_demo.json); `tools/train_demo.py` reproduces them.
The record's "trained_sizes" (stages 9 to 11 and 13: nine sizes from 96x128 to 480x640; stages 1-8 drew
96x128 only) is what hmmn-run's safe default reads (hmmn_deploy.core.working_size, docs/demo_model.md).
"""

from __future__ import annotations

import json
import os

DEMO_CONFIG = "small"
WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
WEIGHTS = os.path.join(WEIGHTS_DIR, "hmmn_small_demo.pth")
RECORD = os.path.join(WEIGHTS_DIR, "hmmn_small_demo.json")
DESCRIPTION = "the built-in demo model (small configuration trained on generated videos, see hmmn_deploy.demo)"


def weights_path() -> str:
    """Path of the shipped demo weights; FileNotFoundError when this install lacks them."""
    if not os.path.isfile(WEIGHTS):
        raise FileNotFoundError(f"the demo weights {WEIGHTS!r} are missing from this install; "
                                "train them with tools/train_demo.py --export, or give --weights")
    return WEIGHTS


def training_record() -> dict:
    with open(RECORD) as f:
        return json.load(f)


def load_demo_model():
    """The demo HMMN (small configuration) with its trained weights, in eval mode."""
    import hmmn_ref

    return hmmn_ref.load_weights(hmmn_ref.HMMN(hmmn_ref.get_config(DEMO_CONFIG)), weights_path())
