"""``sigalex export``, ONNX Runtime prediction, int8 and fp16 exports, and the compact AlexNet.

The models here are compact AlexNets (``model.width = 0.25``, 3.6 M parameters) on 64×64
images, so an export takes a second or two; their heads are scaled so that probabilities
spread over (0, 1) and comparisons of them mean something. The int8 test fits the head of such
a network on real Bonn segments (its convolutions keep their random initialisation, as in
test_predict.py) and quantises it on the training side of the recipe's split.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx", reason="needs the export extra: pip install 'sigalex[export]'")
ort = pytest.importorskip("onnxruntime", reason="needs the export extra")

import sigalex  # noqa: E402
from sigalex import cli  # noqa: E402
from sigalex._files import sha256_file  # noqa: E402
from sigalex.checkpoint import (  # noqa: E402
    initial_model,
    load_checkpoint,
    load_model,
    new_checkpoint,
    save_checkpoint,
)
from sigalex.config import from_dict  # noqa: E402
from sigalex.errors import ConfigError, DataError, ParameterError  # noqa: E402
from sigalex.export.onnx import ExportGraph, export_onnx  # noqa: E402
from sigalex.export.runtime import OnnxClassifier, read_metadata  # noqa: E402
from sigalex.frontend import ImageFrontend  # noqa: E402
from sigalex.inference import predict_to_dir  # noqa: E402
from sigalex.models import ModelSpec, SignalClassifier, build_frontend, build_network  # noqa: E402
from sigalex.render import colormap_lut  # noqa: E402
from sigalex.synthetic import make_synthetic_recording  # noqa: E402

RATE = 256.0
FRONT_ENDS = {
    "stft": {"method": "stft", "n_fft": 128, "hop_length": 32, "fmax": 40.0},
    "mel": {"method": "mel", "n_fft": 128, "hop_length": 16, "n_mels": 32, "fmax": 60.0},
    "cwt": {"method": "cwt", "fmin": 1.0, "fmax": 40.0, "n_freqs": 32},
    "hilbert": {"method": "hilbert", "fmin": 1.0, "fmax": 40.0, "n_bands": 16},
}
RENDERS = {
    "stft": {"normalize": "fixed", "vmin": 0.0, "vmax": 80.0},
    "mel": {"normalize": "percentile"},
    "cwt": {},
    "hilbert": {},
}


def _windows(n: int, n_channels: int = 1, n_times: int = 1024, seed: int = 0) -> torch.Tensor:
    """EEG-like windows: background noise, some with a 3 Hz spike-and-wave of larger amplitude."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_times) / RATE
    x = 30 * rng.standard_normal((n, n_channels, n_times))
    for i in range(0, n, 2):
        x[i] += 200 * np.sign(np.sin(2 * np.pi * 3 * t + i)) * np.exp(-((t - 2) ** 2))
    return torch.from_numpy(x.astype(np.float32))


def _checkpoint(path: Path, method: str, *, n_channels: int = 1, render=None, size=64) -> Path:
    """A compact AlexNet behind ``method`` images whose probabilities spread over (0, 1)."""
    recipe = {
        "transform": FRONT_ENDS[method],
        "render": {"size": size, **(RENDERS[method] if render is None else render)},
        "model": {"weights": "none", "width": 0.25},
        "eval": {"positive_class": "seizure"},
    }
    cfg = from_dict(recipe)
    spec = ModelSpec(
        classes=("background", "seizure"), sample_rate=RATE, n_channels=n_channels,
        n_times=1024, positive_class="seizure", window_s=4.0, stride_s=4.0,
        channel_names=tuple(f"EEG{i}" for i in range(n_channels)),
    )  # fmt: skip
    torch.manual_seed(0)
    network = build_network("alexnet", num_classes=2, width=0.25)
    model = SignalClassifier(build_frontend(cfg, RATE), network, spec).eval()
    with torch.no_grad():  # spread the logits: a random head gives probabilities near 1/2
        logits = model(_windows(16, n_channels))
        d = logits[:, 1] - logits[:, 0]
        scale = 3.0 / max(float(d.std()), 1e-6)
        head = network.classifier[-1]
        head.weight.mul_(scale)
        head.bias.mul_(scale).add_(torch.tensor([0.5, -0.5]) * float(d.mean()) * scale)
    return save_checkpoint(path, new_checkpoint(model, cfg, training={"epoch": 1}))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``{method: (checkpoint, onnx)}``: a whole-pipeline export per front end."""
    folder = tmp_path_factory.mktemp("exports")
    out = {}
    for method in FRONT_ENDS:
        ckpt = _checkpoint(folder / f"{method}.pt", method)
        out[method] = (ckpt, export_onnx(ckpt, folder / f"{method}.onnx").path)
    return out


# ---------------------------------------------------------------------------------------------
# Export-safe paths in PyTorch


def _max_lut_step(name: str = "viridis") -> float:
    """The largest difference, in 8-bit levels, between neighbouring colormap entries."""
    lut8 = colormap_lut(name).mul(255).round()
    return float((lut8[1:] - lut8[:-1]).abs().max())


@pytest.mark.parametrize("method", sorted(FRONT_ENDS))
def test_export_safe_paths_give_the_fast_paths_images(method):
    """Maps within 1e-5 of each map's peak of the float64 fast path (the float32 fast path's
    own distance is ≤ 4e-5 for Hilbert, ≤ 2e-6 otherwise). Images within one 8-bit level of
    the fast uint8 path on at least 99.9% of pixel values, the rest a neighbouring colormap
    entry (≤ 3 levels for viridis): a map value that float32 rounding moves across one of
    the LUT's 1024 boundaries takes the next colour. From the same maps, min/max and fixed
    normalisation compute the same unit values, so those images are within one level
    everywhere (the resize's rounding); percentiles differ from ``torch.quantile`` in an
    occasional last bit."""
    fe = ImageFrontend(RATE, size=227, **FRONT_ENDS[method], **RENDERS[method])
    x = _windows(6, n_channels=2)
    reference = fe.transform(x.double())
    fast = fe(x, image_dtype="uint8").float()
    with fe.export_safe():
        maps = fe.transform(x)
        safe = fe(x).mul(255).round()
        assert fe.transform.export_safe and fe.render.export_safe
    assert not fe.transform.export_safe and not fe.render.export_safe  # the fast paths are back
    peak = reference.abs().amax(dim=(-2, -1), keepdim=True)
    assert float(((maps.double() - reference).abs() / peak).max()) < 1e-5
    same_maps = fe.render(maps, image_dtype="uint8").float()
    fe.render.export_safe = True
    try:
        rendered = (fe.render(maps).mul(255).round() - same_maps).abs()
    finally:
        fe.render.export_safe = False
    exact = fe.render.normalize != "percentile"
    assert float(rendered.max()) <= (1 if exact else _max_lut_step())
    for diff in (rendered, (safe - fast).abs()):
        assert float((diff <= 1).float().mean()) >= 0.999
        assert float(diff.max()) <= _max_lut_step()


def test_tile_and_percentile_have_export_safe_paths():
    fe = ImageFrontend(
        RATE, size=64, channels="tile", normalize="percentile", pad_mode="reflect",
        **{k: v for k, v in FRONT_ENDS["stft"].items()},
    )  # fmt: skip
    x = _windows(3, n_channels=5)
    fast = fe(x, image_dtype="uint8").float()
    with fe.export_safe():
        safe = fe(x).mul(255).round()
    diff = (safe - fast).abs()
    assert safe.shape == (3, 3, 64, 64)
    assert float((diff <= 1).float().mean()) >= 0.999 and float(diff.max()) <= _max_lut_step()


def test_hilbert_frequency_output_has_no_export_path():
    fe = ImageFrontend(RATE, "hilbert", size=64, output="frequency", n_bands=4, fmin=2.0, fmax=30.0)
    with fe.export_safe(), pytest.raises(ParameterError, match="output='frequency'"):
        fe(_windows(1))


# ---------------------------------------------------------------------------------------------
# ONNX Runtime against PyTorch, metadata


#: Largest probability difference between ONNX Runtime and the model unit's fast path, per
#: front end: the images are the same 8-bit levels (the export emulates the uint8 CPU resize)
#: but for a pixel in 10^4 (10^3 for Hilbert, whose float32 envelope is the least exact) where
#: float32 rounding moves a map value across a colormap boundary; these models are sharp.
AGREEMENT = {"stft": 1e-4, "mel": 1e-4, "cwt": 1e-3, "hilbert": 2e-2}


@pytest.mark.parametrize("method", sorted(FRONT_ENDS))
def test_onnx_runtime_gives_pytorch_s_probabilities(exported, method):
    """ONNX Runtime on the whole pipeline against PyTorch: the traced graph's forward pass and
    the model unit's fast path (uint8 images on the CPU), the same classes."""
    ckpt, path = exported[method]
    model = load_model(ckpt, device="cpu")
    onnx_model = OnnxClassifier(path)
    x = _windows(10, seed=3)
    got = onnx_model.probabilities(x).numpy()
    with torch.no_grad():
        traced = ExportGraph(model).eval()(x).numpy()
    fast = model.probabilities(x).numpy()
    assert got.shape == (10, 2) and got.dtype == np.float32
    assert 0.05 < got[:, 1].std()  # the probabilities spread: the comparison means something
    for want in (traced, fast):
        np.testing.assert_allclose(got, want, atol=AGREEMENT[method])
        assert float(np.median(np.abs(got - want))) < 1e-4
    assert (got.argmax(1) == fast.argmax(1)).all()


def test_metadata_round_trip_opset_and_dynamic_batch(exported):
    ckpt_path, path = exported["stft"]
    ckpt = load_checkpoint(ckpt_path)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert {o.domain: o.version for o in proto.opset_import}[""] == 17
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert inp.name == "windows" and out.name == "probabilities"
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["batch", 1, 1024]
    assert out.type.tensor_type.shape.dim[0].dim_param == "batch"
    meta = read_metadata({p.key: p.value for p in proto.metadata_props}, str(path))
    assert meta["spec"] == ckpt.spec and meta["recipe"] == ckpt.config
    assert meta["checkpoint_sha256"] == sha256_file(ckpt_path)
    assert meta["version"] == sigalex.__version__ and meta["graph"] == "pipeline"
    assert meta["precision"] == "fp32" and meta["export"]["opset"] == 17
    assert "TorchScript" in meta["export"]["exporter"]
    assert meta["checkpoint"]["training"]["epoch"] == 1
    assert "sigalex predict" in proto.doc_string
    # any batch size, including one
    model = OnnxClassifier(path)
    assert model.probabilities(_windows(1)).shape == (1, 2)
    assert model.probabilities(_windows(0)).shape == (0, 2)


def test_model_only_export_takes_images(exported, tmp_path):
    ckpt, _ = exported["cwt"]
    path = export_onnx(ckpt, tmp_path / "net.onnx", model_only=True).path
    proto = onnx.load(str(path), load_external_data=False)
    assert [i.name for i in proto.graph.input] == ["images"]
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim][1:] == [3, 64, 64]
    model = load_model(ckpt, device="cpu")
    x = _windows(6, seed=4)
    got = OnnxClassifier(path).probabilities(x).numpy()  # the front end runs in PyTorch
    np.testing.assert_allclose(got, model.probabilities(x).numpy(), atol=1e-4)


def test_onnx_predict_end_to_end_with_events_resume_and_errors(tmp_path):
    """``sigalex predict`` on an ONNX file: the same windows, classes and events as on its
    checkpoint; resume, errors.tsv and the summary work alike."""
    ckpt = _checkpoint(tmp_path / "m.pt", "stft", n_channels=2)
    path = tmp_path / "m.onnx"
    assert cli.main(["export", "--checkpoint", str(ckpt), "--out", str(path)]) == 0
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        rec = make_synthetic_recording(40, n_channels=2, seizures=[(12, 14)], seed=i)
        rec.channel_names = ["EEG0", "EEG1"]
        np.save(data / f"rec{i}.npy", rec.data)
    (data / "broken.npy").write_bytes(b"not numpy")
    inputs = [str(data)]
    a = predict_to_dir(ckpt, inputs, tmp_path / "pt", device="cpu", sample_rate=RATE)
    b = predict_to_dir(path, inputs, tmp_path / "onnx", device="cpu", sample_rate=RATE)
    assert a["exit_status"] == b["exit_status"] == 3  # the broken file: some failed
    assert b["model"]["runtime"].startswith("onnxruntime") and b["model"]["graph"] == "pipeline"
    assert b["checkpoint_sha256"] == sha256_file(path) and not b["compiled"]
    rows = {k: _tsv(tmp_path / k / "windows.tsv") for k in ("pt", "onnx")}
    assert len(rows["pt"]) == len(rows["onnx"]) == 20
    for x, y in zip(rows["pt"], rows["onnx"], strict=True):
        assert x["predicted"] == y["predicted"] and x["start_s"] == y["start_s"]
        assert abs(float(x["prob_seizure"]) - float(y["prob_seizure"])) < 1e-4
    for name in ("rec0_events.tsv", "rec1_events.tsv"):
        pt_events, onnx_events = (_tsv(tmp_path / k / "events" / name) for k in ("pt", "onnx"))
        assert len(pt_events) == len(onnx_events) >= 1
        for x, y in zip(pt_events, onnx_events, strict=True):
            cx, cy = x.pop("confidence"), y.pop("confidence")
            assert cx == cy or abs(float(cx) - float(cy)) < 1e-4
            assert x == y
    assert [r["recording"] for r in _tsv(tmp_path / "onnx" / "errors.tsv")] == [
        str(data / "broken.npy")
    ]
    again = predict_to_dir(
        path, inputs, tmp_path / "onnx", device="cpu", sample_rate=RATE, resume=True
    )
    assert again["this_run"]["skipped_complete"] == 2 and again["this_run"]["windows"] == 0
    with pytest.raises(DataError, match="another checkpoint"):
        predict_to_dir(ckpt, inputs, tmp_path / "onnx", device="cpu", resume=True)
    with pytest.raises(ParameterError, match="compile applies to PyTorch"):
        sigalex.Predictor.from_checkpoint(path, compile=True)


def _tsv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_corrupt_and_foreign_onnx_files_are_one_line_errors(tmp_path, capsys):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage" * 10)
    foreign = tmp_path / "foreign.onnx"
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(onnx.helper.make_model(graph), str(foreign))
    for path, message in (
        (corrupt, "not a readable ONNX model"),
        (foreign, "without sigalex's metadata"),
    ):
        with pytest.raises(DataError, match=message):
            sigalex.Predictor.from_checkpoint(path)
        code = cli.main(
            ["predict", "--checkpoint", str(path), "--out", str(tmp_path / "o"), str(tmp_path)]
        )
        err = capsys.readouterr().err
        assert code == 1 and err.count("\n") == 1 and str(path) in err and message in err


# ---------------------------------------------------------------------------------------------
# int8 and fp16


@pytest.mark.needs_data
def test_int8_export_agrees_with_fp32_on_real_bonn_windows(data_dir, tmp_path, monkeypatch):
    """A network fitted on Bonn ABCD-vs-E (head only), exported and quantised with ``sigalex
    export --quantize int8`` (calibration on 64 training-side windows): on the 100 test
    segments, the same class as fp32 on at least 95% of them (measured: 100%) and as PyTorch."""
    from sigalex.train import prepare_data, window_dataset

    monkeypatch.setenv("SIGALEX_DATA", str(data_dir))
    recipe = {
        "data": {"dataset": "bonn", "task": "ABCD-E"},
        "transform": {"method": "stft", "n_fft": 256, "hop_length": 32, "fmax": 40.0},
        "render": {"size": 64, "normalize": "fixed", "vmin": 10.0, "vmax": 100.0},
        "model": {"weights": "none", "width": 0.25},
        "eval": {"positive_class": "E"},
    }
    cfg = from_dict(recipe)
    data = prepare_data(cfg)
    split = data.splits[0]
    torch.manual_seed(0)
    model, _, _ = initial_model(cfg, data.spec)
    model.eval()

    def windows(idx):
        ds = window_dataset(data, idx)
        return torch.stack([ds[i][0] for i in range(len(idx))]), torch.from_numpy(data.targets[idx])

    net = model.network
    x, y = windows(split.train)
    with torch.no_grad():
        feats = net.classifier[:-1](torch.flatten(net.avgpool(net.features(net.normalize(model.images(x).float() / 255))), 1))  # fmt: skip
    head = net.classifier[-1]
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(100):
        loss = torch.nn.functional.cross_entropy(head(feats), y, weight=torch.tensor([1.0, 4.0]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    ckpt = save_checkpoint(
        tmp_path / "bonn.pt", new_checkpoint(model, cfg, training={"split": split.description})
    )
    out = tmp_path / "bonn-int8.onnx"
    args = ["export", "--checkpoint", str(ckpt), "--out", str(out), "--quantize", "int8"]
    assert cli.main([*args, "--calibration", "64"]) == 0
    meta = OnnxClassifier(out).meta
    q = meta["quantization"]
    assert meta["precision"] == "int8" and q["format"] == "QDQ"
    assert q["calibration"]["side"] == "train" and q["calibration"]["n_windows"] == 64
    proto = onnx.load(str(out), load_external_data=False)
    quantized = {n.name for n in proto.graph.node if n.op_type == "QuantizeLinear"}
    assert quantized and not any(n.startswith("/frontend/") for n in quantized)
    fp32 = tmp_path / "bonn.onnx"
    export_onnx(ckpt, fp32)
    assert out.stat().st_size < 0.3 * fp32.stat().st_size
    xt, yt = windows(split.test)
    p8 = OnnxClassifier(out).probabilities(xt).numpy()
    p32 = OnnxClassifier(fp32).probabilities(xt).numpy()
    pt = load_model(ckpt).probabilities(xt).numpy()
    assert (p32.argmax(1) == pt.argmax(1)).mean() == 1.0
    assert (p8.argmax(1) == p32.argmax(1)).mean() >= 0.95
    assert (pt.argmax(1) == yt.numpy()).mean() > 0.8  # the model learned something to keep


def test_fp16_export_halves_the_network_only(exported, tmp_path, capsys):
    ckpt, fp32 = exported["stft"]
    out = tmp_path / "half.onnx"
    assert (
        cli.main(["export", "--checkpoint", str(ckpt), "--out", str(out), "--quantize", "fp16"])
        == 0
    )
    assert "fp16" in capsys.readouterr().out
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    halves = [t.name for t in proto.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    assert halves and all("frontend" not in n for n in halves)
    for value in (proto.graph.input[0], proto.graph.output[0]):
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert out.stat().st_size < 0.6 * fp32.stat().st_size
    meta = (
        OnnxClassifier(out).meta
        if _runs(out)
        else read_metadata({p.key: p.value for p in proto.metadata_props}, str(out))
    )
    assert meta["precision"] == "fp16"
    if not _runs(out):
        pytest.skip("fp16 is for GPUs; this onnxruntime CPU provider cannot run it")
    got = OnnxClassifier(out).probabilities(_windows(4)).numpy()
    want = OnnxClassifier(fp32).probabilities(_windows(4)).numpy()
    np.testing.assert_allclose(got, want, atol=5e-2)


def _runs(path: Path) -> bool:
    try:
        OnnxClassifier(path).probabilities(_windows(1))
    except DataError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# The compact network; packaging


def test_model_width_builds_trains_saves_and_reloads(tmp_path):
    cfg = from_dict(
        {"transform": FRONT_ENDS["stft"], "render": {"size": 64},
         "model": {"weights": "none", "width": 0.25}}
    )  # fmt: skip
    spec = ModelSpec(classes=("a", "b"), sample_rate=RATE, n_channels=1, n_times=1024)
    model, used, _ = initial_model(cfg, spec)
    assert used == "random"
    n_params = sum(p.numel() for p in model.network.parameters())
    full = sum(p.numel() for p in build_network("alexnet", num_classes=2).parameters())
    assert n_params < full / 15  # 3.6 M vs 57 M
    convs = [m.out_channels for m in model.network.features if isinstance(m, torch.nn.Conv2d)]
    assert convs == [16, 48, 96, 64, 64]
    assert model.network.classifier[1].out_features == 1024
    opt = torch.optim.SGD(model.network.parameters(), lr=0.01)
    model.train()
    loss = torch.nn.functional.cross_entropy(model(_windows(4)), torch.tensor([0, 1, 0, 1]))
    loss.backward()
    opt.step()
    path = save_checkpoint(tmp_path / "c.pt", new_checkpoint(model.eval(), cfg))
    again = load_model(path)
    x = _windows(3)
    np.testing.assert_allclose(again.probabilities(x), model.probabilities(x), atol=1e-6)
    assert again.network.width == 0.25
    with pytest.raises(ConfigError, match="ImageNet weights fit the full network only"):
        from_dict({"model": {"width": 0.25}})
    with pytest.raises(ConfigError, match="model.width = 1.5"):
        from_dict({"model": {"width": 1.5, "weights": "none"}})


def test_import_sigalex_does_not_import_onnx_and_export_says_what_to_install(tmp_path):
    code = (
        "import sys, sigalex, sigalex.inference, sigalex.export.runtime; "
        "print([m for m in ('onnx', 'onnxruntime') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    hide = (
        "import sys, importlib.util as u; real = u.find_spec; "
        "u.find_spec = lambda n, *a: None if n in ('onnx', 'onnxruntime') else real(n, *a); "
        "from sigalex import cli; sys.exit(cli.main(sys.argv[1:]))"
    )
    args = ["export", "--checkpoint", "x.pt", "--out", "x.onnx"]
    proc = subprocess.run([sys.executable, "-c", hide, *args], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "sigalex: error: sigalex export needs onnx and onnxruntime: pip install 'sigalex[export]'"
    ]


def test_export_cli_errors_name_the_flag(exported, tmp_path, capsys):
    ckpt, _ = exported["stft"]
    for extra, message in (
        (["--opset", "16"], "--opset 16"), (["--calibration", "0"], "--calibration 0"),
    ):  # fmt: skip
        code = cli.main(
            ["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "m.onnx"), *extra]
        )
        assert code == 1 and message in capsys.readouterr().err
    code = cli.main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "m.pt")])
    assert code == 1 and "name the file .onnx" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    summary = json.dumps(OnnxClassifier(exported["stft"][1]).describe())
    assert "onnxruntime" in summary
