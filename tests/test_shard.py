"""Sharded prediction (issue 15): ``sigalex predict --shard K/N`` into one folder, concurrently,
killed and resumed, assembled by the last shard or by ``--assemble``, and under torchrun.

The model is untrained (random weights, 64×64 images, one channel, 4 s windows at 256 Hz): these
tests check that shards together give exactly what one run gives, not what is predicted. Shards
run as subprocesses (``python -m sigalex``) where they must run at the same time.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import untrained_seizure_checkpoint

from sigalex import cli
from sigalex.errors import DataError, ParameterError
from sigalex.inference import assemble_shards, predict_to_dir, shard_of
from sigalex.inference.shards import check_shard, parse_shard, torchrun_shard

REPO = Path(__file__).resolve().parents[1]
TABLES = ("windows.tsv", "recordings.tsv", "errors.tsv")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return untrained_seizure_checkpoint(tmp_path_factory.mktemp("model") / "checkpoint.pt", 0)


@pytest.fixture(scope="module")
def other_model(tmp_path_factory) -> Path:
    return untrained_seizure_checkpoint(tmp_path_factory.mktemp("other") / "checkpoint.pt", 1)


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """16 short single-channel .npy recordings (5 to 12 s at 256 Hz, some with spike bursts) in
    two folders, and one corrupt file."""
    folder = tmp_path_factory.mktemp("archive")
    rng = np.random.default_rng(7)
    for i in range(16):
        n = int(256 * (5 + i % 8))
        x = 30 * rng.standard_normal(n)
        if i % 3 == 0:
            x[n // 3 : n // 3 + 512] += 200 * np.sign(np.sin(np.arange(512) * 2 * np.pi * 3 / 256))
        sub = folder / ("night" if i % 2 else "day")
        sub.mkdir(exist_ok=True)
        np.save(sub / f"rec{i:02d}.npy", x.astype(np.float32))
    (folder / "day" / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    return folder


@pytest.fixture(scope="module")
def inputs(archive) -> list[str]:
    """The archive, and an input that names nothing (an error row, once over all shards)."""
    return [str(archive), str(archive / "missing.npy")]


@pytest.fixture(scope="module")
def single(model, inputs, tmp_path_factory) -> Path:
    """The reference: one unsharded run over all inputs."""
    out = tmp_path_factory.mktemp("single") / "out"
    summary = predict_to_dir(model, inputs, out, device="cpu", batch_size=8)
    assert summary["exit_status"] == 3
    return out


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh, delimiter="\t"))


def _same_tables(out: Path, ref: Path) -> None:
    """The same rows in the same order; probabilities to 1e-6; the same events files."""
    for name in TABLES:
        a, b = _rows(out / name), _rows(ref / name)
        assert a[0] == b[0] and len(a) == len(b), name
        for x, y in zip(a[1:], b[1:], strict=True):
            text = [(u, v) for u, v in zip(x, y, strict=True) if not u.startswith("0.")]
            assert all(u == v for u, v in text), (name, x, y)
            if name == "windows.tsv":
                np.testing.assert_allclose([float(u) for u in x[5:]], [float(v) for v in y[5:]],
                                           atol=1e-6)  # fmt: skip
    events = sorted(p.name for p in (ref / "events").iterdir())
    assert sorted(p.name for p in (out / "events").iterdir()) == events and events
    for name in events:  # confidence: a mean probability, to float noise (batches differ)
        a, b = _rows(out / "events" / name), _rows(ref / "events" / name)
        assert a[0] == b[0] and len(a) == len(b)
        for x, y in zip(a[1:], b[1:], strict=True):
            k = a[0].index("confidence")
            assert x[:k] + x[k + 1 :] == y[:k] + y[k + 1 :]
            np.testing.assert_allclose(float(x[k]), float(y[k]), atol=1e-6)
    s, r = (
        json.loads((out / "summary.json").read_text()),
        json.loads((ref / "summary.json").read_text()),
    )
    assert s["outputs"] == r["outputs"] and s["exit_status"] == r["exit_status"] == 3
    assert not list(out.rglob("*.tmp")) and not list(out.glob(".sigalex*.lock"))


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", **extra)
    return env


def _predict(model: Path, inputs, out: Path, *flags: str, **env: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "sigalex", "predict", "--checkpoint", str(model), *inputs,
            "--out", str(out), "--device", "cpu", "--batch-size", "8", *flags]  # fmt: skip
    return subprocess.Popen(args, env=_env(**env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    stdout, stderr = proc.communicate(timeout=300)
    return proc.returncode, stdout, stderr


def _expected_status(inputs, k: int, n: int) -> int:
    """A shard's exit status: over its own inputs (the corrupt file and the missing one fail)."""
    from sigalex.inference import find_inputs

    files, problems = find_inputs(inputs)
    names = [str(f) for f in files] + [t for t, _ in problems]
    mine = [x for x in names if shard_of(x, n) == k]
    failed = [x for x in mine if x.endswith(("broken.npy", "missing.npy"))]
    return 0 if not failed else 4 if len(failed) == len(mine) else 3


# ---------------------------------------------------------------------------------------------
# Shards together give what one run gives


def test_three_concurrent_shards_assemble_to_the_single_run(model, inputs, single, tmp_path):
    out = tmp_path / "out"
    procs = [_predict(model, inputs, out, "--shard", f"{k}/3") for k in range(3)]
    results = [_finish(p) for p in procs]
    for k, (code, _, stderr) in enumerate(results):
        assert code == _expected_status(inputs, k, 3), stderr
        assert "Traceback" not in stderr
    reports = "".join(stdout + stderr for _, stdout, stderr in results)
    assert "was the last: tables of all 3 shards assembled" in reports
    _same_tables(out, single)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["shards"]["count"] == 3 and sorted(summary["shards"]["run_ids"]) == [
        "0",
        "1",
        "2",
    ]
    assert summary["totals"]["classified"] == 16 and summary["totals"]["failed"] == 2
    # every recording was classified by exactly one shard, in that shard's own folder
    owners = {}
    for k in range(3):
        for part in (out / "parts" / f"shard-{k}-of-3").glob("*.json"):
            assert part.name not in owners
            owners[part.name] = k
            path = json.loads(part.read_text())["path"]
            assert shard_of(path, 3) == k
    assert len(owners) == 18
    # --assemble by hand gives the same tables again
    assert cli.main(["predict", "--assemble", str(out)]) == 3
    _same_tables(out, single)


def test_the_last_shard_assembles_and_only_then(model, inputs, single, tmp_path, capsys):
    out = tmp_path / "out"
    for k in (2, 0):
        s = predict_to_dir(model, inputs, out, device="cpu", batch_size=8, shard=(k, 3))
        assert s["assembled"] is None and s["shard"]["done"]
        assert not (out / "windows.tsv").exists() and not (out / "summary.json").exists()
    assert s["waiting_for"] == [1]
    code = cli.main(["predict", "--assemble", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert "shard 1 of 3 not done" in err[0] and "--resume" in err[0]
    s = predict_to_dir(model, inputs, out, device="cpu", batch_size=8, shard=(1, 3))
    assert s["assembled"]["exit_status"] == 3 and s["waiting_for"] == []
    _same_tables(out, single)
    # a shard finishing at the same moment finds the tables assembled from the same runs
    assert assemble_shards(out, automatic=True) is None
    (out / "summary.json").unlink()  # two finishing at once: one assembles, the other waits
    with ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda _: assemble_shards(out, automatic=True, wait_s=60), range(2)))
    assert sum(s is not None for s in both) == 1
    _same_tables(out, single)
    # a shard starting again removes the assembled tables: none stay that are not current
    s = predict_to_dir(model, inputs, out, device="cpu", batch_size=8, shard=(1, 3), resume=True)
    assert s["this_run"]["windows"] == 0 and s["assembled"] is not None
    _same_tables(out, single)


# ---------------------------------------------------------------------------------------------
# Killed and resumed


def test_a_shard_killed_midway_is_completed_by_resume(model, inputs, single, tmp_path):
    out = tmp_path / "out"
    for k in (0, 2):
        predict_to_dir(model, inputs, out, device="cpu", batch_size=8, shard=(k, 3))
    proc = _predict(model, inputs, out, "--shard", "1/3")
    parts = out / "parts" / "shard-1-of-3"
    deadline = time.monotonic() + 120
    while not list(parts.glob("*.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    if (out / "shards" / "shard-1-of-3.json").exists():
        # It finished before the kill (and may have assembled, or been killed assembling):
        # kill its results instead.
        done = sorted(parts.glob("*.json"))
        for p in done[: len(done) // 2]:
            p.unlink()
        (out / "shards" / "shard-1-of-3.json").unlink()
        (out / ".sigalex.shard-1-of-3.lock").write_text(json.dumps(
            {"pid": proc.pid, "host": socket.gethostname(), "what": "killed"}))  # fmt: skip
        (parts / ".x.json.1.abc.tmp").write_text("half")  # as a write cut short leaves
        for table in ("windows.tsv", "recordings.tsv", "errors.tsv", "summary.json"):
            (out / table).unlink(missing_ok=True)  # it had assembled too: as if killed before
    ok_before = sum(json.loads(p.read_text())["status"] == "ok" for p in parts.glob("*.json"))
    assert not (out / "windows.tsv").exists()
    with pytest.raises(DataError, match="shard 1 of 3 not done"):
        assemble_shards(out)
    s = predict_to_dir(model, inputs, out, device="cpu", batch_size=8, shard=(1, 3), resume=True)
    run = s["this_run"]
    assert run["skipped_complete"] == ok_before  # its finished recordings are not redone
    assert run["classified"] + run["failed"] + run["skipped_complete"] == run["inputs"]
    assert s["assembled"] is not None
    _same_tables(out, single)


def test_sigterm_stops_a_shard_as_ctrl_c_does(model, inputs, tmp_path):
    """A job's time limit or preemption (SIGTERM): locks released, finished parts kept."""
    out = tmp_path / "out"
    proc = _predict(model, inputs, out, "--shard", "0/1")
    deadline = time.monotonic() + 120
    while not list(out.glob("parts/*/*.json")) and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    code, _, stderr = _finish(proc)
    if code == 130:  # stopped midway (else it had finished: nothing to check)
        assert "sigalex: interrupted" in stderr and "Traceback" not in stderr
        assert (out / "shards" / "shard-0-of-1.stopped.json").exists()
        assert not list(out.glob(".sigalex*.lock")) and not list(out.rglob("*.tmp"))
    else:
        assert code == 3, stderr


def test_an_interrupted_shard_leaves_no_done_marker(model, inputs, tmp_path, monkeypatch):
    from sigalex.inference import Predictor

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
        yield

    out = tmp_path / "out"
    monkeypatch.setattr(Predictor, "predict_files", interrupted)
    with pytest.raises(KeyboardInterrupt):
        predict_to_dir(model, inputs, out, device="cpu", shard=(0, 1))
    stopped = json.loads((out / "shards" / "shard-0-of-1.stopped.json").read_text())
    assert stopped["shard"]["done"] is False and stopped["this_run"]["interrupted"]
    assert not (out / "shards" / "shard-0-of-1.json").exists()
    assert not (out / ".sigalex.shard-0-of-1.lock").exists()
    with pytest.raises(DataError, match="shard 0 of 1 not done"):
        assemble_shards(out)


def test_resume_redoes_only_the_missing_recordings_of_its_shard(model, inputs, single, tmp_path):
    out = tmp_path / "out"
    for k in range(3):
        predict_to_dir(model, inputs, out, device="cpu", batch_size=8, shard=(k, 3))
    parts = out / "parts" / "shard-0-of-3"
    ok = [p for p in sorted(parts.glob("*.json")) if json.loads(p.read_text())["status"] == "ok"]
    others = {p: p.stat().st_mtime_ns for p in (out / "parts").rglob("*.json") if p.parent != parts}
    for p in ok[:2]:
        p.unlink()
    s = predict_to_dir(model, inputs, out, device="cpu", batch_size=8, shard=(0, 3), resume=True)
    assert s["this_run"]["classified"] == 2
    assert s["this_run"]["skipped_complete"] == len(ok) - 2
    assert {p: p.stat().st_mtime_ns for p in others} == others  # the other shards' untouched
    _same_tables(out, single)
    # without --resume a shard redoes its own recordings and leaves the others' parts alone
    s = predict_to_dir(model, inputs, out, device="cpu", batch_size=8, shard=(0, 3))
    assert s["this_run"]["skipped_complete"] == 0 and s["this_run"]["classified"] == len(ok)
    assert {p: p.stat().st_mtime_ns for p in others} == others
    _same_tables(out, single)


# ---------------------------------------------------------------------------------------------
# The assignment


def test_the_shard_of_a_file_depends_on_its_path_alone(tmp_path):
    names = [tmp_path / f"rec{i:04d}.edf" for i in range(1000)]
    before = {p: shard_of(p, 10) for p in names}
    more = [tmp_path / f"new{i:04d}.edf" for i in range(300)]
    after = {p: shard_of(p, 10) for p in [*more[:150], *names, *more[150:]]}
    assert all(after[p] == k for p, k in before.items())  # adding files moves none
    counts = np.bincount(list(before.values()), minlength=10)
    assert counts.min() > 60 and counts.max() < 140  # spread evenly
    (tmp_path / "real.edf").write_bytes(b"")
    (tmp_path / "link.edf").symlink_to(tmp_path / "real.edf")
    assert shard_of(tmp_path / "link.edf", 7) == shard_of(tmp_path / "real.edf", 7)
    assert shard_of("relative.edf", 7) == shard_of(Path.cwd() / "relative.edf", 7)
    assert all(shard_of(p, 1) == 0 for p in names[:20])


def test_a_shard_with_no_inputs_is_done_at_once(model, archive, tmp_path):
    files = sorted(archive.rglob("rec*.npy"))[:2]
    n = 50
    empty = next(k for k in range(n) if all(shard_of(f, n) != k for f in files))
    s = predict_to_dir(model, files, tmp_path / "out", device="cpu", shard=(empty, n))
    assert s["exit_status"] == 0 and s["this_run"]["inputs"] == 0 and s["shard"]["done"]


# ---------------------------------------------------------------------------------------------
# One line for every error


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("3/2", "--shard 3/2: K=3 must be in 0..1"),
        ("x", "--shard x: must be K/N"),
        ("0/0", "--shard 0/0: N=0 must be a positive number of shards"),
        ("1/", "--shard 1/: must be K/N"),
    ],
)
def test_bad_shard_values_are_one_line(model, archive, tmp_path, capsys, value, message):
    args = ["predict", "--checkpoint", str(model), "--out", str(tmp_path / "o"), str(archive)]
    assert cli.main([*args, "--shard", value]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "o").exists()


def test_api_shard_values_are_checked():
    assert parse_shard("2/5") == (2, 5) == check_shard((2, 5))
    for bad in ((5, 5), (0, 0), (1.5, 3), "1/3", (1,)):
        with pytest.raises(ParameterError, match="shard"):
            check_shard(bad)


def test_mixing_shard_counts_checkpoints_and_unsharded_runs_is_refused(
    model, other_model, archive, tmp_path, capsys
):
    files = sorted(archive.rglob("rec0*.npy"))[:3]
    out = tmp_path / "out"
    predict_to_dir(model, files, out, device="cpu", shard=(0, 3))
    base = ["predict", "--device", "cpu", "--out", str(out), *map(str, files)]
    cases = [
        (["--checkpoint", str(model), "--shard", "0/2"], "holds shards of N=3"),
        (["--checkpoint", str(other_model), "--shard", "1/3"], "another checkpoint (sha256"),
        (["--checkpoint", str(model), "--shard", "1/3", "--threshold", "0.7"],
         "--threshold 0.5, not 0.7"),
        (["--checkpoint", str(model)], "holds the results of sharded runs (3 shards"),
        (["--checkpoint", str(model), "--resume"], "holds the results of sharded runs"),
    ]  # fmt: skip
    for flags, message in cases:
        assert cli.main([*base, *flags]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (flags, err)
    assert len(list((out / "parts" / "shard-0-of-3").glob("*.json"))) == sum(
        shard_of(f, 3) == 0 for f in files
    )  # nothing of shard 0 was removed
    # a sharded run into the results of an unsharded one
    plain = tmp_path / "plain"
    predict_to_dir(model, files, plain, device="cpu")
    assert cli.main([*base[:4], str(plain), *map(str, files), "--checkpoint", str(model),
                     "--shard", "0/2"]) == 1  # fmt: skip
    assert "results of a run without --shard" in capsys.readouterr().err
    assert len(_rows(plain / "windows.tsv")) > 1


def test_assemble_errors_are_one_line(model, other_model, archive, tmp_path, capsys):
    files = sorted(archive.rglob("rec*.npy"))
    out = tmp_path / "out"
    predict_to_dir(model, files, out, device="cpu", shard=(1, 4))
    cases = [
        (["--assemble", str(out)], "shards 0, 2-3 of 4 not done"),
        (["--assemble", str(out), str(files[0])], "--assemble takes no INPUT"),
        (["--assemble", str(out), "--checkpoint", str(other_model)], "another checkpoint"),
        (["--assemble", str(out), "--threshold", "0.3"], "--assemble: --threshold does not apply"),
        (["--assemble", str(tmp_path)], "not the output folder of sharded runs"),
        (["--assemble", str(tmp_path / "nope")], "no such folder"),
        (["--out", str(out), str(files[0])], "--checkpoint is required"),
        (["--checkpoint", str(model), str(files[0])], "--out is required"),
        (["--checkpoint", str(model), "--out", str(out)], "no INPUT given"),
    ]
    for flags, message in cases:
        assert cli.main(["predict", *flags]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (flags, err)


# ---------------------------------------------------------------------------------------------
# torchrun


def test_torchrun_ranks_shard_the_inputs_and_the_last_assembles(model, inputs, single, tmp_path):
    out = tmp_path / "out"
    procs = [
        _predict(model, inputs, out, RANK=str(r), WORLD_SIZE="2", LOCAL_RANK=str(r),
                 LOCAL_WORLD_SIZE="2")
        for r in range(2)
    ]  # fmt: skip
    results = [_finish(p) for p in procs]
    for r, (code, _, stderr) in enumerate(results):
        assert code == _expected_status(inputs, r, 2), stderr
    assert json.loads((out / "shards" / "manifest.json").read_text())["n_shards"] == 2
    _same_tables(out, single)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["devices"] and all(d.startswith("cpu") for d in summary["devices"])


def test_torchrun_environment_is_read_and_checked(model, archive, tmp_path, monkeypatch, capsys):
    assert torchrun_shard({}) is None
    assert torchrun_shard({"RANK": "0", "WORLD_SIZE": "1"}) is None  # one process: unsharded
    assert torchrun_shard({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == (3, 4, 1)
    with pytest.raises(ParameterError, match=r"RANK=4, WORLD_SIZE=4,.*need 0 <= RANK < WORLD_SIZE"):
        torchrun_shard({"RANK": "4", "WORLD_SIZE": "4"})
    with pytest.raises(ParameterError, match="WORLD_SIZE='four'"):
        torchrun_shard({"RANK": "0", "WORLD_SIZE": "four"})
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    args = ["predict", "--checkpoint", str(model), "--out", str(tmp_path / "o"), str(archive)]
    assert cli.main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "RANK=2, WORLD_SIZE=2" in err[0]
