"""The full-size path: the paper configuration exported and validated at 240x432 (about 2 min)."""

from __future__ import annotations

import json

import pytest



@pytest.mark.slow
def test_paper_model_exports_and_validates(paper_export):
    out = paper_export
    record = json.loads((out / "manifest.json").read_text())
    assert record["input"] == {"height": 240, "width": 432, "padded_height": 240, "padded_width": 432,
                               "pad": [0, 0, 0, 0], "multiple": 16, "min_cells_16": 32}
    assert all(v["passed"] for v in record["validation"]["graphs"].values())
    assert record["validation"]["video"]["decided_agreement"] >= 0.999
    assert record["graphs"]["encode_query"]["bytes"] > 50 * 2**20  # the ResNet-50 trunk is in there
