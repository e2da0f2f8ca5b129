"""The trained sizes of a run's weights, wherever they come from (the rule: core/working_size.py)."""

from __future__ import annotations

import os
from typing import Optional

from ..core.working_size import FIELD, WorkingSize, parse_trained_sizes


def for_run(weights: Optional[str], random_weights: bool = False, artifacts: Optional[str] = None,
            config: Optional[str] = None) -> Optional[WorkingSize]:
    """The trained sizes of a run's weights: W.json beside --weights W.pth, those an --artifacts
    manifest carries, or the built-in model's of `config` (default the mobile one); None for
    random weights or without a record."""
    if random_weights:
        return None
    if artifacts:
        from ..core import manifest as manifest_io

        try:
            model = manifest_io.read_manifest(artifacts).get("model", {})
        except (OSError, ValueError):
            return None  # opening the session says what is wrong with the folder
        sizes = model.get(FIELD) if isinstance(model, dict) else None
        if sizes is None:
            return None
        return WorkingSize(parse_trained_sizes(sizes, f"{artifacts!r} (manifest.json)"),
                           os.path.join(artifacts, "manifest.json"))
    if weights:
        return WorkingSize.for_weights(weights)
    from .. import demo

    built_in = demo.BUILT_IN.get(config or demo.DEMO_CONFIG)
    return WorkingSize.from_record(built_in.record) if built_in else None  # no such model: opening the session says so
