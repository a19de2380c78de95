#!/usr/bin/env bash
# Every check that needs a GPU, in one script, for a machine that has one (about 10 minutes on
# one GPU). Results go to ${OUT:-gpu-results}/: the CUDA tests' log, run_all's JSON and table,
# bench_ddp's JSON when there are 2 or more GPUs, and an fp16 ONNX check when onnxruntime has
# the CUDA provider. A step that fails is reported and the others still run; the exit status
# is 1 when any failed. Run from the repository root after `bash .ci/run`'s installs:
#
#     bash benchmarks/gpu_checks.sh                 # or OUT=/somewhere bash benchmarks/gpu_checks.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-results}"
mkdir -p "$OUT"
export MPLBACKEND=Agg SIGALEX_DATA="${SIGALEX_DATA:-$(cd .. && pwd)/shared/data}"
failed=()
step() {  # step NAME COMMAND...: run, log to $OUT/NAME.log, remember a failure
    local name="$1"; shift
    echo "== $name: $*"
    if ! "$@" >"$OUT/$name.log" 2>&1; then failed+=("$name"); echo "   FAILED (see $OUT/$name.log)"; fi
    tail -n 3 "$OUT/$name.log"
}
nvidia-smi -L | tee "$OUT/gpus.txt"
n_gpus=$(nvidia-smi -L | wc -l)

# 1. The tests that skip without CUDA (rendering, transforms, training and prediction on cuda).
step cuda-tests python3 -m pytest -q -rs -k "cuda" tests/
# 2. Every benchmark on the GPU: render, predict (compiled too), train, scaling, peers, memory.
step run-all python3 benchmarks/run_all.py --device cuda --out "$OUT/run_all.json" \
    --markdown "$OUT/run_all.md" --plot "$OUT/scaling.png"
# 3. Data-parallel scaling (targets: >= 1.8x on 2 GPUs, >= 3.4x on 4).
if [ "$n_gpus" -ge 2 ]; then
    step ddp python3 benchmarks/bench_ddp.py --device cuda --nproc "$n_gpus" --json "$OUT/ddp.json"
fi
# 4. fp16 ONNX on the CUDA provider (needs onnxruntime-gpu instead of onnxruntime).
if python3 -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())" 2>/dev/null; then
    step fp16 env PYTHONPATH="benchmarks:." python3 - <<'EOF'
import tempfile, time
from pathlib import Path
import numpy as np, torch
import bench_export
from sigalex.checkpoint import load_checkpoint
from sigalex.export.onnx import export_onnx
from sigalex.export.runtime import OnnxClassifier
tmp = Path(tempfile.mkdtemp())
ckpt = bench_export.random_checkpoint(tmp / "m.pt", 1.0)
export_onnx(load_checkpoint(ckpt), tmp / "fp32.onnx")
export_onnx(load_checkpoint(ckpt), tmp / "fp16.onnx", precision="fp16")
x = torch.from_numpy(bench_export.bonn_windows(256)[0])
for name in ("fp32", "fp16"):
    m = OnnxClassifier(tmp / f"{name}.onnx", device="cuda")
    m.probabilities(x[:32])
    t = time.perf_counter()
    for i in range(0, len(x), 32):
        m.probabilities(x[i : i + 32])
    print(f"onnx {name} on cuda: {len(x) / (time.perf_counter() - t):.0f} windows/s")
EOF
else
    echo "== fp16: skipped (onnxruntime has no CUDAExecutionProvider: pip install onnxruntime-gpu)"
fi
if [ "${#failed[@]}" -gt 0 ]; then echo "failed: ${failed[*]}"; exit 1; fi
echo "all GPU checks passed; results in $OUT/"
