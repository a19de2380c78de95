"""``sigalex export``: a checkpoint as one ONNX file (fp32, int8 or fp16) that needs nothing else."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

from ..errors import ParameterError, SigalexError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export a checkpoint as an ONNX file (whole pipeline or network; fp32, int8, fp16)",
        description="Export a checkpoint from 'sigalex run' as one ONNX file: by default the "
        "whole pipeline, raw windows (batch, n_channels, n_times) float32 -> class "
        "probabilities, front end included (transform, scaling, normalisation, colormap, "
        "resize, network); --model-only exports images (batch, 3, H, W) in [0, 1] -> "
        "probabilities. The file's metadata holds the model's contract (classes, positive "
        "class, sample rate, window, stride, channels), the recipe, the sigalex version and the "
        "checkpoint's sha256; 'sigalex predict --checkpoint model.onnx' runs it with ONNX "
        "Runtime. Every export is checked with onnx.checker and against PyTorch on a batch "
        "of another size (probabilities within 1e-2: a check for gross errors).",
        epilog="--quantize int8: static post-training quantisation of the network (QDQ, "
        "per-channel int8 weights, uint8 activations; ONNX Runtime), calibrated on "
        "--calibration windows drawn from the training side of the recipe's split (the data "
        "must be where the recipe finds it); the front end stays float32. --quantize fp16: the "
        "network in float16, for GPUs. Needs onnx and onnxruntime: pip install "
        "'sigalex[export]'. Example: sigalex export --checkpoint runs/eeg/checkpoint.pt --out "
        "eeg.onnx --quantize int8",
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="checkpoint.pt from sigalex run")
    p.add_argument("--out", "-o", type=Path, required=True, help="the .onnx file to write")
    p.add_argument(
        "--quantize",
        choices=("int8", "fp16"),
        help="int8: static quantisation of the network (CPU); fp16: float16 network (GPU)",
    )
    p.add_argument(
        "--calibration",
        type=int,
        default=256,
        metavar="N",
        help="int8: training-side windows that calibrate the activation ranges (256)",
    )
    p.add_argument(
        "--model-only",
        action="store_true",
        help="export the network alone: images -> probabilities (the front end then runs in "
        "PyTorch when sigalex predict uses the file)",
    )
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, 17 or later (17)")
    p.add_argument(
        "--reduce-range",
        action="store_true",
        help="int8: 7-bit weights, for x86 CPUs without VNNI (ONNX Runtime's advice)",
    )
    p.add_argument("--seed", type=int, default=0, help="int8: which calibration windows (0)")
    p.set_defaults(func=main)


def main(args) -> int:
    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise SigalexError(
            f"sigalex export needs {' and '.join(missing)}: pip install 'sigalex[export]'"
        )
    if args.calibration < 1:
        raise ParameterError(f"--calibration {args.calibration}: must be a positive integer")
    if args.opset < 17:
        raise ParameterError(f"--opset {args.opset}: sigalex exports need opset 17 or later")
    if args.out.suffix.lower() != ".onnx":
        raise ParameterError(f"--out {args.out}: name the file .onnx")
    from ..checkpoint import load_checkpoint
    from ..export.onnx import export_onnx

    ckpt = load_checkpoint(args.checkpoint)
    if args.quantize in (None, "fp16"):
        precision = args.quantize or "fp32"
        result = export_onnx(
            ckpt, args.out, model_only=args.model_only, opset=args.opset, precision=precision
        )
        print(result.line())
        for note in result.notes:
            print(f"  {note}")
        return 0
    from ..export.quantize import quantize_int8

    with tempfile.TemporaryDirectory(prefix="sigalex-export-") as tmp:
        fp32 = export_onnx(
            ckpt, Path(tmp) / "fp32.onnx", model_only=args.model_only, opset=args.opset
        )
        print(
            f"fp32 graph: {fp32.size_bytes / 1e6:.1f} MB, {fp32.graph}, opset {fp32.opset}; max "
            f"|ONNX Runtime - PyTorch| = {fp32.max_abs_diff:.2g} on the probabilities"
        )
        result, _ = quantize_int8(
            fp32.path, args.out, ckpt, calibration=args.calibration, seed=args.seed,
            reduce_range=args.reduce_range,
        )  # fmt: skip
        ratio = result.size_bytes / fp32.size_bytes
        print(
            f"{args.quantize}: {args.out} ({result.size_bytes / 1e6:.1f} MB, {ratio:.2f}x the "
            f"fp32 file; {result.seconds:.1f} s)"
        )
        for note in result.notes:
            print(f"  {note}")
    return 0
