"""``sigalex render`` / ``sigalex transforms`` / ``--version``: in-process through
``sigalex.cli.main`` (fast), and once as real subprocesses."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from conftest import tones
from PIL import Image

import sigalex
from sigalex.cli import main

SR = 173.61


@pytest.fixture
def txt_file(tmp_path):
    path = tmp_path / "S001.txt"
    x = tones(SR, 1024, [(4.0, 200.0), (12.0, 50.0)], noise=5.0)
    np.savetxt(path, np.round(x), fmt="%d")  # Bonn layout: one integer per line
    return path, x


def read_png(path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == "RGB"
        return np.asarray(im)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_render_txt_with_sample_rate(txt_file, tmp_path, capsys):
    path, x = txt_file
    out = tmp_path / "out" / "s001.png"
    code, stdout, err = run_cli(
        capsys, "render", path, "--sample-rate", SR, "--fmax", 40, "--out", out
    )
    assert code == 0 and err == ""
    assert f"wrote {out}" in stdout and "227x227" in stdout
    image = read_png(out)
    assert image.shape == (227, 227, 3)
    # the same picture as the Python API on the same samples (the file holds rounded float32)
    expected = sigalex.spectrogram(np.round(x).astype(np.float32), SR, fmax=40.0)
    np.testing.assert_array_equal(image, expected)


@pytest.mark.parametrize("method", ["stft", "mel", "cwt", "hilbert"])
def test_render_wav_every_method(method, tmp_path, capsys):
    sr = 8000
    x = tones(sr, 4000, [(300.0, 0.3), (1200.0, 0.1)], noise=0.01)
    path = tmp_path / "digit.wav"
    soundfile.write(path, x, sr, subtype="PCM_16")
    out = tmp_path / f"{method}.png"
    code, stdout, _ = run_cli(capsys, "render", path, "-m", method, "--size", 64, "-o", out)
    assert code == 0, stdout
    assert read_png(out).shape == (64, 64, 3)
    assert f"{method}, 1 channel(s), 0.50 s" in stdout


def test_render_npy_with_params_and_excerpt(tmp_path, capsys):
    sr = 256.0
    x = tones(sr, 2560, [(10.0, 1.0)], noise=0.1).astype(np.float32)
    path = tmp_path / "x.npy"
    np.save(path, x)
    out = tmp_path / "x.png"
    code, stdout, _ = run_cli(
        capsys,
        "render", path, "--sample-rate", sr, "-m", "mel", "--n-fft", 128, "--hop-length", 16,
        "-p", "n_mels=24", "-p", "fmin=1.5", "-p", "htk=true", "--colormap", "magma",
        "--size", 80, "--start-s", 1.0, "--duration-s", 4.0, "--out", out,
    )  # fmt: skip
    assert code == 0
    assert "4.00 s" in stdout
    expected = sigalex.spectrogram(
        x[256 : 256 + 1024], sr, method="mel", n_fft=128, hop_length=16, n_mels=24, fmin=1.5,
        htk=True, colormap="magma", size=80,
    )  # fmt: skip
    np.testing.assert_array_equal(read_png(out), expected)


def test_render_multichannel_each_writes_one_png_per_channel(tmp_path, capsys):
    sr = 256.0
    data = np.stack([tones(sr, 1024, [(f, 1.0)]) for f in (5.0, 20.0, 40.0)]).astype(np.float32)
    path = tmp_path / "eeg.npy"
    np.save(path, data)
    out = tmp_path / "pngs" / "eeg.png"
    code, stdout, _ = run_cli(
        capsys, "render", path, "--sample-rate", sr, "--channels", "each", "--size", 48,
        "--n-fft", 128, "--out", out,
    )  # fmt: skip
    assert code == 0
    written = sorted(p.name for p in out.parent.iterdir())
    assert written == ["eeg_ch0.png", "eeg_ch1.png", "eeg_ch2.png"]
    assert "3 images" in stdout
    for i in range(3):
        expected = sigalex.spectrogram(data[i], sr, size=48, n_fft=128)
        np.testing.assert_array_equal(read_png(out.parent / f"eeg_ch{i}.png"), expected)
    # tile: one image
    code, _, _ = run_cli(
        capsys, "render", path, "--sample-rate", sr, "--channels", "tile", "-o", tmp_path / "t.png"
    )
    assert code == 0 and read_png(tmp_path / "t.png").shape == (227, 227, 3)


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["--out", "{tmp}/a.png"], r"\.txt file carries no sample rate; pass sample_rate"),
        (["--sample-rate", "0", "--out", "{tmp}/a.png"], r"--sample-rate 0: must be a positive"),
        (["--sample-rate", "173.61", "--start-s", "-5", "--out", "{tmp}/a.png"], r"--start-s -5"),
        (
            ["--sample-rate", "173.61", "--duration-s", "-3", "--out", "{tmp}/a.png"],
            r"--duration-s",
        ),
        (
            ["--sample-rate", "173.61", "--start-s", "99", "--out", "{tmp}/a.png"],
            r"--start-s 99 is past the end",
        ),
        (
            ["--sample-rate", "173.61", "-p", "n_ftt=64", "--out", "{tmp}/a.png"],
            r"unknown parameter\(s\) n_ftt",
        ),
        (["--sample-rate", "173.61", "-m", "cwtt", "--out", "{tmp}/a.png"], r"did you mean 'cwt'"),
        (
            ["--sample-rate", "173.61", "--fmax", "100", "--out", "{tmp}/a.png"],
            r"fmax=100 Hz.*Nyquist",
        ),
        (
            ["--sample-rate", "173.61", "--colormap", "nope", "--out", "{tmp}/a.png"],
            r"colormap 'nope'",
        ),
        (["--sample-rate", "173.61", "--normalize", "fixed", "--out", "{tmp}/a.png"], r"vmin"),
        (
            ["--sample-rate", "173.61", "--n-fft", "4096", "--out", "{tmp}/a.png"],
            r"too short.*n_times=1024",
        ),
    ],
)
def test_render_errors_exit_1_with_one_line(argv, pattern, txt_file, tmp_path, capsys):
    path, _ = txt_file
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, _, err = run_cli(capsys, "render", path, *argv)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sigalex: error: ")
    assert "Traceback" not in err

    assert re.search(pattern, lines[0]), lines[0]
    assert not (tmp_path / "a.png").exists()


@pytest.mark.parametrize(
    ("name", "content", "pattern"),
    [
        ("missing.txt", None, "no such file"),
        ("words.txt", "hello\nworld\n", "not a text file of numbers"),
        ("empty.txt", "", "empty"),
        ("nan.txt", "1\nnan\n3\n", "NaN"),
        ("signal.xyz", "1\n2\n", "unknown extension '.xyz'"),
        ("broken.wav", "RIFF....not audio", "not a readable audio file"),
    ],
)
def test_render_bad_files_exit_1(name, content, pattern, tmp_path, capsys):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    code, _, err = run_cli(
        capsys, "render", path, "--sample-rate", 100, "--out", tmp_path / "a.png"
    )
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert pattern in err and str(path) in err


def test_bad_key_value_is_a_usage_error(txt_file, tmp_path, capsys):
    path, _ = txt_file
    with pytest.raises(SystemExit) as exc:
        main(["render", str(path), "-p", "n_fft", "--out", str(tmp_path / "a.png")])
    assert exc.value.code == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_transforms_lists_all_four(capsys):
    code, out, _ = run_cli(capsys, "transforms")
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")]
    assert listed == ["cwt", "hilbert", "mel", "stft"]
    assert "n_fft" in out and "n_mels" in out and "n_freqs" in out and "n_bands" in out


def test_no_command_prints_help(capsys):
    code, out, _ = run_cli(capsys)
    assert code == 2 and "render" in out


def test_subprocess_version_and_render(txt_file, tmp_path):
    version = subprocess.run(
        [sys.executable, "-m", "sigalex", "--version"], capture_output=True, text=True, timeout=120
    )
    assert version.returncode == 0
    assert version.stdout.strip() == f"sigalex {sigalex.__version__}"
    path, _ = txt_file
    out = tmp_path / "sub.png"
    ok = subprocess.run(
        [sys.executable, "-m", "sigalex", "render", str(path), "--sample-rate", "173.61", "-m", "stft",
         "--fmax", "40", "--size", "100", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert read_png(out).shape == (100, 100, 3)
    assert ok.stderr == ""
    # (error exits are checked in-process above: each subprocess costs seconds of torch import)


def test_version_in_process(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"sigalex {sigalex.__version__}"


def test_output_into_a_closed_pipe_is_not_a_traceback():
    """`sigalex transforms | head -1`: the reader leaves early; sigalex stops quietly (141)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sigalex", "transforms"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # before the child (still importing) writes a byte
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err, err
