#!/usr/bin/env bash
# What a machine with a CUDA GPU checks for this project, in one go (no network needed):
#
#     tools/gpu_checks.sh OUT [DATA]
#
# 1. the machine: GPU, driver, torch, ONNX Runtime's providers, whether TensorRT imports;
# 2. the package installed over the machine's own torch (no downloads), then the GPU tests;
# 3. hmmn-bench of the paper configuration at 480x854 on the GPU (torch FP32 and FP16 beside
#    the baseline, interleaved), and its scaling table;
# 4. TensorRT: the small built-in model's engines (fp32, fp16; builder auto: enterprise TensorRT when it
#    sees this GPU, else TensorRT-RTX, or ENGINES=DIR with DIR/demo_fp32 and DIR/demo_fp16 built
#    elsewhere), what TensorRT-RTX itself says when it loads one here, hmmn-run --backend tensorrt
#    against torch on the same GPU on 4 generated videos (hmmn-eval: J&F and mask agreement), and
#    hmmn-bench --backend tensorrt torch --precision fp32 fp16 --compare at 480x854, 2 objects;
# 5. with DATA (vtest.avi, 00000.png, weights.pth, vt_ort/vtest: an hmmn-run output to compare
#    with): hmmn-run of the whole video on the GPU (torch, and tensorrt when engines load), and
#    tools/rounding_floor.py over it.
# Logs and JSON go to OUT; every step has a time limit so that one stuck step leaves the rest.
set -u
OUT=${1:?usage: tools/gpu_checks.sh OUT [DATA]}
DATA=${2:-}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HMMN_CACHE=${HMMN_CACHE:-/tmp/hmmn-cache}
step() { echo; echo "== $1 ($(date +%T))"; }

step "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
$PY -c "import torch, onnxruntime as o; print('torch', torch.__version__, 'cuda', torch.version.cuda,
torch.cuda.get_device_name(), '| onnxruntime', o.__version__, o.get_available_providers())"
$PY -c "import tensorrt; print('tensorrt', tensorrt.__version__)" 2>&1 | tail -1
echo "libnvinfer on the loader path: $(ldconfig -p | grep -c libnvinfer)"

step "install (no dependencies: the machine's torch, onnx and onnxruntime)"
$PY -m pip install -q --no-deps --no-build-isolation --no-index -e . 2>&1 | tail -2

step "GPU tests"
timeout 300 $PY -m pytest -q -m gpu -rs tests 2>&1 | tee "$OUT/gpu_tests.log" | tail -12

step "hmmn-bench: paper configuration, 480x854, 2 objects, torch on cuda against the baseline"
timeout 240 hmmn-bench --random-weights --size 480x854 --backend torch --precision fp32 fp16 --device cuda \
    --compare --frames 40 --warmup 5 --scaling "$OUT/scaling" --json \
    > "$OUT/bench_paper_480x854.json" 2> "$OUT/bench_paper_480x854.log"
grep -A30 "^run " "$OUT/bench_paper_480x854.log" | head -30

step "TensorRT: the flavours installed, the small built-in model's engines"
$PY -c "from hmmn_deploy.core import tensorrt_lib as t
for f in t.FLAVORS.values():
    print(f.name, t.version(f) if t.installed(f) else 'not installed')"
ENGINES=${ENGINES:-$OUT/engines}
for p in fp32 fp16; do
    [ -f "$ENGINES/demo_$p/manifest.json" ] || timeout 300 hmmn-export --config small --out "$ENGINES/demo_$p" --size 96x128 \
        --precision $p --engines 2>&1 | tail -7
done
$PY - "$ENGINES/demo_fp32" <<'PYEOF' 2>&1 | tail -5
import json, sys
m = json.load(open(sys.argv[1] + "/manifest.json"))["engines"]
print("builder", m.get("builder"), "targets", m.get("targets"))
if (m.get("builder") or {}).get("name") == "tensorrt-rtx":  # what TensorRT-RTX says on this GPU, unfiltered
    import tensorrt_rtx as trt
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(open(sys.argv[1] + "/match.engine", "rb").read())
    print("tensorrt_rtx deserialize:", "ok" if engine is not None else "refused (None)")
PYEOF

step "hmmn-run --backend tensorrt against torch on this GPU: 4 generated videos"
$PY tools/generate_videos.py --out /tmp/gv --split val --count 4 --frames 24 --size 96x128 --first-seed 13000 >/dev/null
timeout 300 hmmn-run /tmp/gv -o /tmp/gv_torch --config small --backend torch --device cuda --no-progress 2>&1 | tail -2
for p in fp32 fp16; do
    timeout 300 hmmn-run /tmp/gv -o /tmp/gv_trt_$p --artifacts "$ENGINES/demo_$p" --backend tensorrt --no-progress \
        2>&1 | tail -2
    [ -d /tmp/gv_trt_$p ] && hmmn-eval --gt /tmp/gv --compare /tmp/gv_torch /tmp/gv_trt_$p 2>&1 | tail -6
done

step "hmmn-bench: paper configuration, 480x854, 2 objects, tensorrt and torch, fp32 and fp16"
timeout 400 hmmn-bench --random-weights --size 480x854 --backend tensorrt torch --precision fp32 fp16 \
    --compare --frames 30 --warmup 5 --json > "$OUT/bench_trt_480x854.json" 2> "$OUT/bench_trt_480x854.log"
grep -A30 "^run " "$OUT/bench_trt_480x854.log" | head -30 || tail -5 "$OUT/bench_trt_480x854.log"

if [ -n "$DATA" ]; then
    step "hmmn-run: the whole vtest video, torch on cuda, capacity 8"
    timeout 300 hmmn-run "$DATA/vtest.avi" --mask "$DATA/00000.png" -o /tmp/vt_cuda --backend torch \
        --device cuda --weights "$DATA/weights.pth" --config small --capacity 8 --no-progress 2>&1 | tail -3
    cp /tmp/vt_cuda/summary.json "$OUT/vt_cuda_summary.json"
    step "hmmn-run: the whole vtest video with TensorRT engines (768x576, built here or refused with a reason)"
    timeout 300 hmmn-run "$DATA/vtest.avi" --mask "$DATA/00000.png" -o /tmp/vt_trt --backend tensorrt \
        --weights "$DATA/weights.pth" --config small --capacity 8 --size 576x768 --no-progress 2>&1 | tail -3
    [ -d /tmp/vt_trt/vtest ] && hmmn-eval --compare /tmp/vt_cuda /tmp/vt_trt 2>&1 | tail -4
    step "rounding floor over the whole video: the runtime protocol (capacity 8) on cuda"
    timeout 400 $PY tools/rounding_floor.py "$DATA/vtest.avi" --mask "$DATA/00000.png" --frames 795 \
        --weights "$DATA/weights.pth" --config small --capacity 8 --device cuda \
        --compare /tmp/vt_cuda/vtest "$DATA/vt_ort/vtest" 2>&1 | tee "$OUT/vt_floor.log"
fi
step "done"
