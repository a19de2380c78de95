"""Deployment: a checkpoint as one self-describing ONNX file (``sigalex export``).

- :mod:`~sigalex.export.onnx`: :func:`export_onnx`, the whole pipeline (raw windows → class
  probabilities, front end included, on export-safe operators) or the network alone
  (``model_only``: images → probabilities), with the model's contract, recipe and source
  checkpoint in the file's metadata, checked by ``onnx.checker`` and against PyTorch;
- :mod:`~sigalex.export.quantize`: static int8 quantisation of the network's nodes with ONNX
  Runtime (QDQ, per-channel weights), calibrated on windows of the recipe's training side;
  fp16 weights for GPUs;
- :mod:`~sigalex.export.runtime`: :class:`OnnxClassifier`, an exported model run by ONNX
  Runtime behind the interface :class:`sigalex.Predictor` uses, and the metadata reader.

``onnx`` and ``onnxruntime`` are an optional extra (``pip install 'sigalex[export]'``),
imported only when a function here needs them; ``import sigalex`` never does. Inference uses
:mod:`~sigalex.export.runtime` only; only :mod:`~sigalex.export.quantize` reads training
data (its calibration windows, through :mod:`sigalex.train`).
"""
