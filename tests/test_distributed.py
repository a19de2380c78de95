"""Distributed training under torchrun: 2 CPU processes on gloo, the tiny synthetic recipe.

Each launch costs two Python processes importing torch (~10 s here); the runs are plumbing
(a few steps on 64×64 images), not learning.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from test_train import TINY

from sigalex import cli
from sigalex.checkpoint import load_checkpoint
from sigalex.inference import Predictor
from sigalex.train import distributed

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    not torch_dist.is_available() or not torch_dist.is_gloo_available(),
    reason="needs torch.distributed with gloo",
)


def _recipe(tmp_path: Path, root: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(root=root, out=tmp_path / "runs"))
    return path


def _env() -> dict:
    return dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        MPLBACKEND="Agg",
    )  # fmt: skip


def _tsv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_two_processes_train_one_model_into_one_run_directory(tmp_path, synthetic_root):
    recipe = _recipe(tmp_path, synthetic_root)
    proc = subprocess.run(
        [sys.executable, "-m", "sigalex", "run", str(recipe), "--nproc", "2"],
        capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()  # one run directory, written by rank 0
    assert "rank 0 of 2, gloo" in proc.stderr + proc.stdout
    assert (proc.stderr + proc.stdout).count("test accuracy") == 1  # one voice
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["backend"] == "gloo"
    assert len(metrics["devices"]) == 2
    assert metrics["batch_size_per_rank"] == 8 and metrics["global_batch_size"] == 16
    # every test example scored exactly once (no duplicates from padding)
    rows = _tsv(run_dir / "test_predictions.tsv")
    spans = {(r["recording"], r["start_s"]) for r in rows}
    assert len(rows) == len(spans) == metrics["n"] == metrics["n_test"]
    assert not list(run_dir.rglob("*.tmp")) and not (run_dir / "last.pt").exists()
    # the checkpoint is the plain model: single-process prediction reproduces the test set
    ckpt = load_checkpoint(run_dir / "checkpoint.pt")
    assert not any(k.startswith("module.") for k in ckpt.state_dict)
    predictor = Predictor.from_checkpoint(run_dir / "checkpoint.pt", device="cpu")
    for recording in sorted({r["recording"] for r in rows}):
        pred = predictor.predict(recording)
        by_start = {round(s, 6): p for s, p in zip(pred.start_s, pred.probabilities, strict=True)}
        for r in (r for r in rows if r["recording"] == recording):
            want = [float(r[f"prob_{c}"]) for c in predictor.classes]
            np.testing.assert_allclose(by_start[round(float(r["start_s"]), 6)], want, atol=1e-5)


CRASH = """
import logging
import sys
from sigalex.config import load_config
from sigalex.train import run
from sigalex.train.callbacks import Callback
from sigalex.train.distributed import Distributed


class Crash(Callback):
    def on_epoch_end(self, trainer, row):
        if trainer.dist.rank == 1 and trainer.epoch == 2:
            raise RuntimeError("rank 1 fails on purpose after epoch 2")


logging.basicConfig(level=logging.INFO)
run(load_config(sys.argv[1], ["train.epochs=3"]), callbacks=[Crash()])
"""


def test_a_crashing_rank_fails_the_run_and_it_resumes(tmp_path, synthetic_root):
    recipe = _recipe(tmp_path, synthetic_root)
    script = tmp_path / "crash.py"
    script.write_text(CRASH)
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    proc = subprocess.run(
        [*launch, str(script), str(recipe)],
        capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "rank 1 fails on purpose after epoch 2" in proc.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert not (run_dir / "metrics.json").exists()  # no result claimed
    assert load_checkpoint(run_dir / "last.pt").training["epoch"] >= 1  # whole: it loads
    (note,) = run_dir.glob(".torchrun-*")  # where a restart of this launch finds the run
    # torchrun --max-restarts would now start the workers again with the launch's run id and
    # TORCHELASTIC_RESTART_COUNT=1 (torch 2.13's restarted gloo workers hang in
    # init_process_group on this machine, so the test starts the two ranks itself): they
    # resume the same run from rank 0's last.pt (a temporary left by a rank killed mid-save is
    # removed, the lock of the dead rank 0 taken over)
    port = str(29600 + os.getpid() % 300)
    env = {**_env(), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
           "TORCHELASTIC_RESTART_COUNT": "1", "TORCHELASTIC_RUN_ID": note.name[len(".torchrun-"):]}  # fmt: skip
    cmd = [sys.executable, "-m", "sigalex", "run", str(recipe), "--set", "train.epochs=3"]
    ranks = [
        subprocess.Popen(cmd, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for r in range(2)
    ]  # fmt: skip
    outs = [r.communicate(timeout=300) for r in ranks]
    assert [r.returncode for r in ranks] == [0, 0], outs[0][1][-3000:] + outs[1][1][-3000:]
    assert "elastic restart 1: resuming" in outs[0][1] + outs[0][0]
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [run_dir.name]  # the same run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and metrics["world_size"] == 2
    assert not list(run_dir.rglob("*.tmp")) and not list(run_dir.glob(".torchrun-*"))


def test_nproc_must_be_positive(tmp_path, synthetic_root, capsys):
    recipe = _recipe(tmp_path, synthetic_root)
    assert cli.main(["run", str(recipe), "--nproc", "0"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--nproc 0" in err


def test_torchrun_command_keeps_every_option():
    args = cli.build_parser().parse_args(
        ["run", "--set", "train.lr=0.1", "--device", "cpu", "--nproc", "4", "--resume", "runs/x"]
    )
    cmd = cli.run.torchrun_command(args)
    assert cmd[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=4"]
    assert cmd[5:] == [
        "-m", "sigalex", "run", "--set", "train.lr=0.1", "--device", "cpu", "--resume", "runs/x"
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The pieces, in two processes spawned here


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch_dist.init_process_group("gloo", rank=rank, world_size=world)
    dist = distributed.Distributed(rank, world, rank, "gloo")
    n = 11  # not a multiple of the world size
    positions = distributed.shard(n, dist)
    y = positions * 10
    p = np.stack([positions, -positions], axis=1).astype(np.float32)
    y_all, p_all, loss = distributed.gather_predictions(
        dist, positions, y, p, float(len(positions))
    )
    sampler = distributed.DistributedWeightedSampler(np.ones(7), 7, dist, seed=3)
    sampler.set_epoch(2)
    drawn = list(sampler)
    result = {
        "positions": positions.tolist(), "y": y_all.tolist(), "p": p_all.tolist(), "loss": loss,
        "drawn": drawn, "len": len(sampler), "broadcast": distributed.broadcast(dist, rank + 5),
    }  # fmt: skip
    Path(out, f"{rank}.json").write_text(json.dumps(result))
    torch_dist.destroy_process_group()


def test_shards_gather_back_in_order_and_samplers_split_an_epoch(tmp_path):
    port = 29500 + os.getpid() % 1000
    mp.spawn(_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"{r}.json").read_text()) for r in (0, 1))
    assert sorted(r0["positions"] + r1["positions"]) == list(range(11))  # each once
    for r in (r0, r1):
        assert r["y"] == [10 * i for i in range(11)]  # back in order, on every rank
        assert r["p"] == [[i, -i] for i in range(11)]
        assert r["loss"] == 1.0 and r["broadcast"] == 5
    assert r0["len"] == r1["len"] == 4 == len(r0["drawn"]) == len(r1["drawn"])  # 8 = 7 rounded up
    g = torch.Generator().manual_seed(3 + 2)
    whole = torch.multinomial(torch.ones(7, dtype=torch.double), 8, True, generator=g).tolist()
    assert r0["drawn"] == whole[0::2] and r1["drawn"] == whole[1::2]


def test_one_process_is_rank_0_of_1(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    dist = distributed.from_environment(torch.device("cpu"))
    assert dist == distributed.SINGLE and dist.is_main and not dist.active
    assert distributed.shard(3, dist).tolist() == [0, 1, 2]
    assert distributed.broadcast(dist, "x") == "x" and distributed.all_gather(dist, 1) == [1]
