"""hmmn_deploy.demo: the built-in models and the generator of the demo videos.

Two sets of weights ship in this package, each with the record of how it was made beside it
(`weights/<name>.json`: the command, settings and, for its working-size rule, "trained_sizes"):

- the mobile configuration, the default when neither --weights nor --config is given: HMMN's
  reads over torchvision's ImageNet MobileNetV2 with the decoder's correction at zero, i.e. label
  propagation inside HMMN, made by `tools/train_mobile.py --iterations 0 --size 240x320 480x640`
  (docs/mobile_model.md); it follows objects in real videos, processing frames of 240x320's area
  to 480x640's as they are;
- the small configuration trained on generated videos (stage 13, `tools/train_demo.py`),
  `--config small` without --weights: fast on small generated clips, lost on real footage.

The record's "trained_sizes" is what hmmn-run's safe default reads (hmmn_deploy.core.working_size,
docs/demo_model.md).
"""

from __future__ import annotations

import json
import os
from typing import NamedTuple, Optional, Tuple

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")


class BuiltIn(NamedTuple):
    weights: str
    record: str
    description: str
    caveat: str = ""  # said after the description when a run picks this model


BUILT_IN = {
    "small": BuiltIn(os.path.join(WEIGHTS_DIR, "hmmn_small_demo.pth"), os.path.join(WEIGHTS_DIR, "hmmn_small_demo.json"),
                     "the built-in small model (stage 13, trained on generated videos, see hmmn_deploy.demo)",
                     "It segments generated videos and loses objects in real ones; for real videos drop --config "
                     "small (the built-in mobile model) or give --weights HMMN_weights.pth"),
    "mobile": BuiltIn(os.path.join(WEIGHTS_DIR, "hmmn_mobile.pth"), os.path.join(WEIGHTS_DIR, "hmmn_mobile.json"),
                      "the built-in mobile model (label propagation over ImageNet MobileNetV2 inside HMMN, "
                      "docs/mobile_model.md)"),
}
BUILT_IN_TOOLS = {"small": "tools/train_demo.py", "mobile": "tools/train_mobile.py --iterations 0 --size 240x320 480x640"}
DEMO_CONFIG = "mobile"  # the built-in model used when neither --weights nor --config is given (issue 38)


def built_in_for(config: Optional[str]) -> Tuple[str, str]:
    """The built-in model a run without --weights gets: -> (configuration, weights path).
    ValueError when `config` has none; FileNotFoundError when this install lacks its weights."""
    config = config or DEMO_CONFIG
    if config not in BUILT_IN:
        raise ValueError(f"built-in models exist for --config {' and '.join(sorted(BUILT_IN))}; for --config "
                         f"{config} give --weights (e.g. the published HMMN_weights.pth) or --random-weights")
    return config, weights_path(config)


def weights_path(config: str = DEMO_CONFIG) -> str:
    """Path of a built-in model's shipped weights; FileNotFoundError when this install lacks them."""
    path = BUILT_IN[config].weights
    if not os.path.isfile(path):
        raise FileNotFoundError(f"the built-in {config} weights {path!r} are missing from this install; "
                                f"make them with {BUILT_IN_TOOLS[config]} --export, or give --weights")
    return path


def training_record(config: str = DEMO_CONFIG) -> dict:
    with open(BUILT_IN[config].record) as f:
        return json.load(f)


def load_demo_model(config: str = DEMO_CONFIG):
    """A built-in HMMN (by default the mobile configuration's) with its weights, in eval mode."""
    import hmmn_ref

    return hmmn_ref.load_weights(hmmn_ref.HMMN(hmmn_ref.get_config(config)), weights_path(config))
