"""hmmn-bench --accuracy N: J&F and mask agreement of each CPU precision against FP32, on the
small built-in model (stage 13, trained on generated videos: random weights' masks mean nothing,
and it works at the generated videos' 96x128) and N generated videos with ground truth of
held-out seeds. The timed runs may use another model (the default mobile model, or the paper
configuration with random weights): speed comes from those, accuracy from the small model."""

from __future__ import annotations

from typing import Callable, Optional

from hmmn_ref.shell import detail

from ..models import ModelChoice, open_session


def demo_accuracy(videos: int, threads: Optional[int], cache: Optional[str], log: Callable[[str], None]) -> dict:
    from ..export import quantize

    # Opening openvino int8 on the small model exports it once into the cache and quantizes it.
    choice = ModelChoice(backend="openvino", precision="int8", config="small", threads=threads, cache=cache)
    _, described = open_session(choice, None, log)
    folder = described["graphs"]
    log(f"accuracy of each precision on the small built-in model ({folder}), {videos} generated videos ...")
    result = quantize.measure_accuracy(folder, videos, threads=threads, log=log, others=("onnxruntime",))
    result["graphs"] = folder
    return result


def print_accuracy(result: dict, log: Callable[[str], None]) -> None:
    detail(log, "")
    detail(log, f"accuracy on the small built-in model: {result['videos']} (J&F against ground truth; agreement with openvino fp32's masks)")
    detail(log, f"{'run':<20} {'J&F':>7} {'J':>7} {'F':>7} {'dJ&F':>7} {'agree %':>9}")
    for name, r in result["computes"].items():
        label = name if name == "onnxruntime" else f"openvino {name}"
        label = "onnxruntime fp32" if name == "onnxruntime" else label
        detail(log, f"{label:<20} {r['J&F']:>7.2f} {r['J']:>7.2f} {r['F']:>7.2f} {r['dJ&F']:>+7.2f} {r['agreement_%']:>9.3f}")
