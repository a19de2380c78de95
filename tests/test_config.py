"""Recipes: parsing, checking (errors name the dotted key), overrides and the TOML round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from sigalex.config import Config, load_config, parse_override, to_toml
from sigalex.errors import ConfigError

PIPELINES = sorted((Path(__file__).resolve().parents[1] / "pipelines").glob("*.toml"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.toml"
    path.write_text(text)
    return path


def test_defaults_and_name_from_file(tmp_path):
    cfg = load_config(write(tmp_path, ""))
    assert cfg == Config(output=cfg.output)
    assert cfg.output.name == "recipe"
    assert cfg.train.optimizer == "sgd" and cfg.train.momentum == 0.9
    assert cfg.train.weight_decay == 5e-4  # the 2012 paper's recipe


def test_transform_parameters_are_kept_and_checked(tmp_path):
    cfg = load_config(write(tmp_path, '[transform]\nmethod = "cwt"\nfmin = 0.5\nn_freqs = 32\n'))
    assert cfg.transform.method == "cwt"
    assert dict(cfg.transform.params) == {"fmin": 0.5, "n_freqs": 32}
    with pytest.raises(ConfigError, match=r"transform\.n_fft.*known: .*n_freqs"):
        load_config(write(tmp_path, '[transform]\nmethod = "cwt"\nn_fft = 256\n'))
    with pytest.raises(ConfigError, match=r"transform\.method = 'cwtt' \(did you mean 'cwt'\?\)"):
        load_config(write(tmp_path, '[transform]\nmethod = "cwtt"\n'))


@pytest.mark.parametrize(
    "text, message",
    [
        ("[train]\nlrr = 0.1\n", r"unknown key 'train\.lrr' \(did you mean 'lr'\?\)"),
        ("[trian]\nlr = 0.1\n", r"unknown key 'trian' \(did you mean 'train'\?\)"),
        ("[train]\nlr = -0.1\n", r"train\.lr = -0\.1: must be > 0"),
        ("[train]\nepochs = 2.5\n", r"train\.epochs = 2\.5: must be an integer"),
        ('[train]\nepochs = "3"\n', r"train\.epochs = '3': must be an integer"),
        ("[train]\namp = 1\n", r"train\.amp = 1: must be true or false"),
        ('[eval]\nsplit = "groupd"\n', r"eval\.split = 'groupd' \(did you mean 'grouped'\?\)"),
        ("[eval]\ntest_fraction = 1.5\n", r"eval\.test_fraction = 1\.5: must be between 0 and 1"),
        ("[eval]\ntest_fraction = 0.6\nval_fraction = 0.5\n", r"must leave data to train on"),
        ('[render]\nnormalize = "fixed"\n', r"render\.vmax > render\.vmin"),
        ("[render]\npercentiles = [1.0]\n", r"render\.percentiles .*list of 2"),
        ('[model]\narchitecture = "alexnet2012"\n', r"trains from scratch"),
        ("train = 3\n", r"\[train\] must be a table"),
        ("[train]\nfreq_warp = 0.6\n", r"train\.freq_warp = 0\.6: must be between 0 and 0\.5"),
        ("[train]\nmixup = -0.2\n", r"train\.mixup = -0\.2: must be >= 0"),
    ],
)
def test_bad_values_name_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_errors_name_the_file(tmp_path):
    path = write(tmp_path, "[train\n")
    with pytest.raises(ConfigError, match="recipe.toml: not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="no such recipe"):
        load_config(tmp_path / "missing.toml")


def test_overrides(tmp_path):
    path = write(tmp_path, "[train]\nlr = 0.01\n")
    cfg = load_config(path, ["train.lr=0.001", "model.weights=none", 'eval.split="stratified"'])
    assert cfg.train.lr == 0.001
    assert cfg.model.weights == "none"  # a bare word is a string
    assert cfg.eval.split == "stratified"
    assert parse_override("transform.fmax=40") == (["transform", "fmax"], 40)
    with pytest.raises(ConfigError, match="section.key"):
        load_config(path, ["lr=0.1"])
    with pytest.raises(ConfigError, match=r"train\.lr = -1"):
        load_config(path, ["train.lr=-1"])


@pytest.mark.parametrize("recipe", PIPELINES, ids=lambda p: p.stem)
def test_resolved_recipe_round_trips(tmp_path, recipe):
    cfg = load_config(recipe)
    again = write(tmp_path, to_toml(cfg))
    assert load_config(again) == cfg


def test_every_recipe_is_there():
    names = {p.stem for p in PIPELINES}
    assert {"eeg-seizure", "eeg-seizure-chbmit", "speech-digits", "synthetic-seizure"} <= names
    tuned = {"eeg-bonn-5class-tuned", "eeg-seizure-tuned", "speech-digits-tuned"}
    assert tuned <= names
    for path in PIPELINES:
        if path.stem in tuned:  # the winning values, with the space they were drawn from
            cfg = load_config(path)
            assert len(cfg.tune.space) >= 8 and cfg.eval.val_fraction > 0, path.stem
            for key, dim in cfg.tune.space.items():
                section, _, name = key.partition(".")
                value = getattr(getattr(cfg, section), name, None)
                if value is None:
                    value = getattr(cfg, section).params[name]
                inside = value in dim.choices if dim.choices else dim.low <= value <= dim.high
                assert inside, f"{path.stem}: {key} = {value!r} is outside its space"
