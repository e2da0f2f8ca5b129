"""ONNX Runtime sessions for the stage graphs, checked against their contracts on load."""

from __future__ import annotations

import os
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from ..core.contracts import GraphSpec
from .validate import check_names


class OrtGraphs:
    """Loads `<folder>/<graph>.onnx` for each contract; `runner(name, feeds) -> {output: array}`."""

    def __init__(
        self,
        folder: str,
        specs: Mapping[str, GraphSpec],
        providers: Sequence[str] = ("CPUExecutionProvider",),
        threads: Optional[int] = None,
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        self.specs = dict(specs)
        self.sessions = {}
        for name, spec in self.specs.items():
            path = os.path.join(folder, f"{name}.onnx")
            session = ort.InferenceSession(path, options, providers=list(providers))
            check_names(spec, [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])
            self.sessions[name] = session

    def __call__(self, name: str, feeds: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        spec = self.specs[name]
        outputs = self.sessions[name].run(spec.output_names, {k: feeds[k] for k in spec.input_names})
        return dict(zip(spec.output_names, outputs))
