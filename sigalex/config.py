"""Recipes: TOML → frozen dataclasses, with errors that name the dotted key.

A recipe has the sections ``data``, ``windows``, ``transform``, ``render``, ``model``, ``train``,
``eval`` and ``output`` (every key optional; defaults below), and optionally ``tune``: the search
space of ``sigalex tune`` (dotted recipe keys as dimensions), which ``sigalex run`` checks and
otherwise ignores. Unknown sections or keys and values of the wrong type are a
:class:`~sigalex.errors.ConfigError` naming the key, e.g. ``train.lr = -1.0: must be > 0``
(``--set section.key=value`` overrides too). Run directories hold the resolved recipe as TOML.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ._toml import dumps_tables
from .errors import ConfigError
from .transforms import available_transforms, transform_parameters


@dataclass(frozen=True)
class DataConfig:
    """Where examples come from."""

    dataset: str = "bonn"  # registered: bonn | chbmit | fsdd | folder | manifest | synthetic
    root: str = ""  # folder (CSV for manifest); "" = $SIGALEX_DATA/<dataset> or the cache
    download: bool = True  # fetch a registered dataset when it is not found
    task: str = "ABCD-E"  # bonn: A-E, ABCD-E, AB-CD-E, 5class
    source: str = "auto"  # chbmit: edf | npy | auto
    sample_rate: float = 0.0  # Hz; 0 = the dataset's own rate; else resample to this
    channels: tuple[str, ...] = ()  # EEG channels (names or patterns); () = all
    n_recordings: int = 12  # synthetic: recordings to generate
    duration_s: float = 300.0  # synthetic: length of each recording


@dataclass(frozen=True)
class WindowsConfig:
    """How recordings are cut into examples."""

    window_s: float = 0.0  # 0 = one example per recording (Bonn segments, FSDD clips)
    stride_s: float = 0.0  # 0 = window_s (no overlap)
    length_s: float = 0.0  # whole recordings: pad/crop to this length; 0 = the longest
    fit: str = "pad_or_crop"  # pad | crop | pad_or_crop
    min_overlap: float = 0.5  # fraction of a window an annotation must cover to label it
    default_label: str = "background"  # label of windows no annotation covers


@dataclass(frozen=True)
class TransformConfig:
    """The time-frequency transform: ``method`` plus its parameters (``sigalex transforms``)."""

    method: str = "stft"
    params: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class RenderConfig:
    """Maps → images (see :class:`sigalex.render.Render`)."""

    size: int = 227
    colormap: str = "viridis"
    channels: str = "mean"  # mean | tile (multichannel EEG)
    scale: str = "db"
    top_db: float = 80.0
    normalize: str = "minmax"
    vmin: float = 0.0
    vmax: float = 0.0
    percentiles: tuple[float, float] = (1.0, 99.0)


@dataclass(frozen=True)
class ModelConfig:
    """The network and its starting weights."""

    architecture: str = "alexnet"  # alexnet | alexnet2012
    weights: str = "imagenet"  # imagenet | none | a state dict | a sigalex checkpoint (fine-tune)
    weights_required: bool = False  # True: missing weights are an error, not a warning
    freeze: str = "none"  # none | features | all_but_head
    frontend: str = "same"  # weights = a sigalex checkpoint: same | checkpoint | recipe
    pretrained_lr_scale: float = 1.0  # learning-rate factor for pretrained layers
    dropout: float = 0.5
    width: float = 1.0  # kernels and hidden units x width, in (0, 1]; < 1: the compact network
    groups: int = 1  # alexnet2012 only: 2 = the paper's two-GPU split (grouped conv2, 4, 5)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation."""

    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # cosine | step | none
    warmup_epochs: int = 0
    balance: str = "weights"  # none | weights (class-weighted loss) | sampler
    time_shift_s: float = 0.0  # random circular shift of each raw window, up to this
    time_masks: int = 0  # SpecAugment: masks across time per example
    freq_masks: int = 0  # SpecAugment: masks across frequency per example
    mask_fraction: float = 0.1  # widest mask, as a fraction of the axis
    freq_warp: float = 0.0  # stretch each map's frequency axis by up to ±this fraction (speakers)
    mixup: float = 0.0  # mixup of training maps and labels, Beta(mixup, mixup); 0 = off
    early_stopping_patience: int = 0  # epochs without improvement; 0 = off
    monitor: str = "balanced_accuracy"  # validation metric for best checkpoint / stopping
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # bf16 autocast on CUDA
    channels_last: bool = True
    num_workers: int = 0
    max_steps_per_epoch: int = 0  # 0 = all; for smoke tests


@dataclass(frozen=True)
class EvalConfig:
    """How data is split and scored."""

    split: str = "grouped"  # grouped | stratified | official | kfold | logo
    test_fraction: float = 0.2
    val_fraction: float = 0.1
    folds: int = 5  # kfold
    seed: int = 0
    positive_class: str = ""  # binary tasks: class for sensitivity/specificity


@dataclass(frozen=True)
class OutputConfig:
    """Where runs go."""

    dir: str = "runs"
    name: str = ""  # default: the recipe's file name
    examples_per_class: int = 6
    keep_last: bool = False  # keep last.pt (optimiser and resume state) after a finished run
    tensorboard: bool = False  # TensorBoard event files in <run>/tensorboard/ (extra: tensorboard)


@dataclass(frozen=True)
class Dimension:
    """One axis of a search space: numbers from ``low`` to ``high`` (``log`` spaced, or in
    ``step``s; ``integer`` for an int key), or one of ``choices``. TOML: ``"train.lr" = {low =
    1e-5, high = 1e-2, log = true}``, ``"transform.method" = ["stft", "cwt"]``."""

    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float = 0.0  # 0: continuous (integers: 1)
    integer: bool = False
    choices: tuple = ()

    def to_toml(self):
        """The TOML value: the list of choices or the ``{low, high, …}`` table."""
        if self.choices:
            return [list(c) if isinstance(c, tuple) else c for c in self.choices]
        table = {"low": self.low, "high": self.high, "log": self.log, "step": self.step}
        return {k: v for k, v in table.items() if v or k in ("low", "high")}


@dataclass(frozen=True)
class TuneConfig:
    """``sigalex tune``: ``space`` maps dotted recipe keys (``"train.lr"``) to dimensions."""

    space: Mapping[str, Dimension] = field(default_factory=dict)
    metric: str = "balanced_accuracy"  # the validation score to optimise (see CHOICES)
    direction: str = "auto"  # auto (minimize loss, maximize scores) | maximize | minimize
    trials: int = 20  # trials of the whole study, every worker's together
    sampler: str = "tpe"  # tpe | random
    pruner: str = "median"  # median | hyperband | none
    prune_after: int = 5  # epochs a trial trains before the pruner may stop it (its warm-up)
    seed: int = -1  # the sampler's seed; -1 = fresh in every worker (parallel workers differ)
    heartbeat_s: int = 60  # a running trial's worker records that it is alive this often
    grace_s: int = 180  # a trial silent this long has lost its worker: failed (and retried)
    retries: int = 1  # times a lost worker's trial is queued again


@dataclass(frozen=True)
class Config:
    """A whole recipe."""

    data: DataConfig = field(default_factory=DataConfig)
    windows: WindowsConfig = field(default_factory=WindowsConfig)
    transform: TransformConfig = field(default_factory=TransformConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)


_SECTION_TYPES = {
    "data": DataConfig,
    "windows": WindowsConfig,
    "transform": TransformConfig,
    "render": RenderConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "output": OutputConfig,
    "tune": TuneConfig,
}

CHOICES = {
    "data.task": ("A-E", "ABCD-E", "AB-CD-E", "5class"),
    "data.source": ("auto", "edf", "npy"),
    "windows.fit": ("pad", "crop", "pad_or_crop"),
    "render.channels": ("mean", "tile"),
    "model.architecture": ("alexnet", "alexnet2012"),
    "model.freeze": ("none", "features", "all_but_head"),
    "model.frontend": ("same", "checkpoint", "recipe"),
    "train.optimizer": ("sgd", "adamw"),
    "train.schedule": ("cosine", "step", "none"),
    "train.balance": ("none", "weights", "sampler"),
    "train.monitor": ("accuracy", "balanced_accuracy", "f1_macro", "auroc", "loss"),
    "eval.split": ("grouped", "stratified", "official", "kfold", "logo"),
    "tune.metric": ("accuracy", "balanced_accuracy", "f1_macro", "loss"),
    "tune.direction": ("auto", "maximize", "minimize"),
    "tune.sampler": ("tpe", "random"),
    "tune.pruner": ("median", "hyperband", "none"),
}
NON_NEGATIVE = {
    "data.sample_rate", "windows.window_s", "windows.stride_s", "windows.length_s",
    "train.momentum", "train.weight_decay", "train.warmup_epochs", "train.time_shift_s",
    "train.time_masks", "train.freq_masks", "train.early_stopping_patience", "train.num_workers",
    "train.max_steps_per_epoch", "train.seed", "eval.seed", "model.dropout", "tune.retries",
    "tune.prune_after",
    "train.mixup",
}  # fmt: skip
POSITIVE = {
    "data.n_recordings", "data.duration_s", "render.size", "render.top_db", "train.epochs",
    "train.batch_size", "train.lr", "model.pretrained_lr_scale", "model.width", "eval.folds",
    "output.examples_per_class", "tune.trials", "tune.heartbeat_s", "tune.grace_s",
}  # fmt: skip
FRACTIONS = {
    "windows.min_overlap", "eval.test_fraction", "eval.val_fraction", "train.mask_fraction",
    "model.dropout", "model.width",
}  # fmt: skip


def _unknown(key: str, options) -> ConfigError:
    options = sorted(options)
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], options, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"unknown key {key!r}{hint}; known: {', '.join(options)}")


def _coerce(key: str, value, annotation):
    """Check ``value`` against a field's type; returns it in that type."""
    origin = typing.get_origin(annotation)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} = {value!r}: must be true or false")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} = {value!r}: must be an integer")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} = {value!r}: must be a number")
        if not math.isfinite(value):
            raise ConfigError(f"{key} = {value!r}: must be finite")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} = {value!r}: must be a string")
        return value
    if origin is tuple:
        args = typing.get_args(annotation)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} = {value!r}: must be a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key} = {value!r}: must be a list of {len(args)} values")
        return tuple(
            _coerce(f"{key}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    raise ConfigError(f"{key}: unsupported type {annotation}")


def _choices(key: str) -> tuple[str, ...] | None:
    if key == "data.dataset":  # every registered dataset, those added by a module too
        from .datasets import available_layouts

        return tuple(available_layouts())
    return CHOICES.get(key)


def _check_value(key: str, value) -> None:
    options = _choices(key)
    if options is not None and value not in options:
        close = difflib.get_close_matches(str(value), options, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{key} = {value!r}{hint}: must be one of {', '.join(options)}")
    if key in POSITIVE and not value > 0:
        raise ConfigError(f"{key} = {value!r}: must be > 0")
    if key in NON_NEGATIVE and value < 0:
        raise ConfigError(f"{key} = {value!r}: must be >= 0")
    if key in FRACTIONS and not 0 <= value <= 1:
        raise ConfigError(f"{key} = {value!r}: must be between 0 and 1")
    if key == "train.freq_warp" and not 0 <= value <= 0.5:
        raise ConfigError(
            f"{key} = {value!r}: must be between 0 and 0.5 (a stretch of ±50% at most)"
        )
    if key == "model.groups" and value not in (1, 2):
        raise ConfigError(
            f"{key} = {value!r}: must be 1 (dense convolutions) or 2 (the 2012 paper's two-GPU "
            "split of conv2, conv4 and conv5)"
        )


def _section(name: str, table) -> object:
    cls = _SECTION_TYPES[name]
    if not isinstance(table, Mapping):
        raise ConfigError(f"[{name}] must be a table; got {table!r}")
    if cls is TransformConfig:
        table = dict(table)
        method = table.pop("method", TransformConfig.method)
        if not isinstance(method, str):
            raise ConfigError(f"transform.method = {method!r}: must be a string")
        nested = table.pop("params", {})
        params = {**dict(nested), **table}
        _check_transform(method, params)
        return TransformConfig(method=method, params=types.MappingProxyType(params))
    values, hints = {}, typing.get_type_hints(cls)
    if cls is TuneConfig:  # keys with a dot are dimensions; a nested [tune.train] reads the same
        table, values["space"] = _split_space(table)
        del hints["space"]
    for key, value in table.items():
        dotted = f"{name}.{key}"
        if key not in hints:
            raise _unknown(dotted, hints)
        values[key] = _coerce(dotted, value, hints[key])
        _check_value(dotted, values[key])
    return cls(**values)


def _split_space(table: Mapping) -> tuple[dict, Mapping[str, Dimension]]:
    """``[tune]`` → its settings and its dimensions (``"train.lr" = {low = …}``)."""
    settings, space = {}, {}
    for key, value in table.items():
        if key in _SECTION_TYPES and isinstance(value, Mapping) and "low" not in value:
            space.update({f"{key}.{k}": _dimension(f"{key}.{k}", v) for k, v in value.items()})
        elif "." in key:
            space[key] = _dimension(key, value)
        else:
            settings[key] = value
    return settings, types.MappingProxyType(space)


def _transform_keys() -> dict[str, list[str]]:
    """Each transform parameter → the methods that take it."""
    out: dict[str, list[str]] = {}
    for method in available_transforms():
        for param in transform_parameters(method):
            out.setdefault(param, []).append(method)
    return out


def _key_type(key: str):
    """The type a dimension's values take (``None``: a transform parameter, any type)."""
    section, _, name = key.partition(".")
    sections = [s for s in _SECTION_TYPES if s not in ("output", "tune")]  # hyperparameters
    if section not in sections:
        no = f"[{section}] holds no hyperparameters" if section in _SECTION_TYPES else None
        raise ConfigError(f"[tune] {key!r}: {no or _unknown(section, sections)}")
    hints = typing.get_type_hints(_SECTION_TYPES[section])
    if section == "transform":
        hints = {"method": str, **dict.fromkeys(_transform_keys())}
    if name not in hints:
        raise ConfigError(f"[tune] {_unknown(key, hints)}")
    return hints[name]


def _dimension(key: str, value) -> Dimension:
    """A dimension's TOML value, checked against the key's type and allowed values."""
    kind, where = _key_type(key), f'tune."{key}"'

    def checked(v, name, as_type=kind) -> typing.Any:
        v = v if as_type is None else _coerce(name, v, as_type)
        try:
            _check_value(key, v)
        except ConfigError as exc:
            raise ConfigError(f"[tune] {exc}") from None
        return v

    if isinstance(value, list) and value and not any(isinstance(v, Mapping) for v in value):
        return Dimension(choices=tuple(checked(v, f"{where}[{i}]") for i, v in enumerate(value)))
    if not isinstance(value, Mapping) or not {"low", "high"} <= set(value):
        raise ConfigError(f"{where} = {value!r}: give {{low = …, high = …}} or a list of choices")
    for name in value:
        if name not in ("low", "high", "log", "step"):
            raise ConfigError(f"{where}: {_unknown(name, ('low', 'high', 'log', 'step'))}")
    if kind not in (int, float, None):
        raise ConfigError(f"{where}: {key} is not a number; give a list of choices")
    bounds = [value[k] for k in ("low", "high", "step") if k in value]
    number = int if kind is int or (kind is None and all(type(v) is int for v in bounds)) else float
    low, high = (checked(value[k], f"{where}.{k}", number) for k in ("low", "high"))
    log = typing.cast(bool, _coerce(f"{where}.log", value.get("log", False), bool))
    step = typing.cast(float, _coerce(f"{where}.step", value.get("step", 0), number))
    problem = (
        f"low = {low!r} is above high = {high!r}" if low > high
        else f"step = {step!r} must be > 0" if step < 0 or ("step" in value and not step)
        else "log = true and step cannot go together" if log and "step" in value
        else f"log = true needs low > 0; got {low!r}" if log and low <= 0
        else None
    )  # fmt: skip
    if problem:
        raise ConfigError(f"{where}: {problem}")
    return Dimension(low=low, high=high, log=log, step=step, integer=number is int)


def _check_space(cfg: Config) -> None:
    """Each dimension's ends (or choices), set alone into the recipe, make a recipe
    :func:`from_dict` accepts: a bad space fails when the recipe is read, before any trial."""
    methods = cfg.tune.space.get("transform.method")
    methods = methods.choices if methods is not None else (cfg.transform.method,)
    for key, dim in cfg.tune.space.items():
        base, (section, _, name) = {}, key.partition(".")
        if section == "transform" and name != "method":
            able = [m for m in methods if m in _transform_keys()[name]]
            if not able:
                raise ConfigError(
                    f'[tune] "{key}": no transform.method the search can pick ({", ".join(methods)}) '
                    f"takes {name} (a parameter of {', '.join(_transform_keys()[name])})"
                )
            base = {"transform.method": able[0]}
        for v in dim.choices or (dim.low, dim.high):
            try:
                with_values(cfg, {**base, key: v})
            except ConfigError as exc:
                raise ConfigError(f'[tune] "{key}" = {v!r}: {exc}') from None


def with_values(cfg: Config, values: Mapping[str, object]) -> Config:
    """The recipe with dotted keys set (``{"train.lr": 1e-3}``: one point of a search space),
    checked as any recipe is, without ``[tune]``. Another ``transform.method`` drops the
    recipe's transform parameters the new method does not take (``n_fft`` for ``cwt``)."""
    raw = to_dict(dataclasses.replace(cfg, tune=TuneConfig()))
    method = values.get("transform.method", cfg.transform.method)
    if method != cfg.transform.method and method in available_transforms():
        takes = set(transform_parameters(str(method)))
        raw["transform"] = {k: v for k, v in raw["transform"].items() if k in takes}
    for key, value in values.items():
        section, _, name = key.partition(".")
        if section not in raw or not name:
            raise _unknown(key, _SECTION_TYPES)
        raw[section][name] = list(value) if isinstance(value, tuple) else value
    return from_dict(raw)


def _check_transform(method: str, params: dict) -> None:
    if method not in available_transforms():
        close = difflib.get_close_matches(method, available_transforms(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"transform.method = {method!r}{hint}: unknown transform; available: "
            f"{', '.join(available_transforms())}"
        )
    allowed = transform_parameters(method)
    for key in params:
        if key not in allowed:
            raise _unknown(f"transform.{key}", allowed)


def from_dict(raw: Mapping) -> Config:
    """Build and check a :class:`Config` from nested mappings (parsed TOML)."""
    sections = {}
    for name, table in raw.items():
        if name not in _SECTION_TYPES:
            raise _unknown(name, _SECTION_TYPES)
        sections[name] = _section(name, table)
    cfg = Config(**sections)
    _check_consistency(cfg)
    return cfg


def _check_consistency(cfg: Config) -> None:
    """Checks across keys that no single value can make."""
    if cfg.render.normalize == "fixed" and not cfg.render.vmax > cfg.render.vmin:
        raise ConfigError(
            f"render.normalize = 'fixed' needs render.vmax > render.vmin; got vmin="
            f"{cfg.render.vmin}, vmax={cfg.render.vmax}"
        )
    if cfg.eval.test_fraction + cfg.eval.val_fraction >= 1:
        raise ConfigError(
            f"eval.test_fraction + eval.val_fraction = "
            f"{cfg.eval.test_fraction + cfg.eval.val_fraction:g}: must leave data to train on"
        )
    if cfg.model.architecture == "alexnet2012" and cfg.model.weights.lower() == "imagenet":
        raise ConfigError(
            f"model.weights = {cfg.model.weights!r}: the 2012 paper network trains from scratch; "
            'set model.weights = "none"'
        )
    if cfg.model.groups != 1 and cfg.model.architecture != "alexnet2012":
        raise ConfigError(
            f"model.groups = {cfg.model.groups} with model.architecture = "
            f"{cfg.model.architecture!r}: grouped convolutions are the 2012 paper's network only "
            '(model.architecture = "alexnet2012"); torchvision\'s AlexNet and its ImageNet '
            "weights are dense (model.groups = 1)"
        )
    if cfg.model.width != 1 and cfg.model.weights.lower() == "imagenet":
        raise ConfigError(
            f"model.weights = {cfg.model.weights!r}: ImageNet weights fit the full network only; "
            f'model.width = {cfg.model.width:g} trains from scratch: set model.weights = "none"'
        )
    if (t := cfg.tune).heartbeat_s >= t.grace_s or t.seed < -1:
        raise ConfigError(
            f"tune.grace_s = {t.grace_s}, tune.heartbeat_s = {t.heartbeat_s}, tune.seed = "
            f"{t.seed}: grace_s must exceed heartbeat_s, and seed be >= -1 (-1: unseeded)"
        )
    _check_space(cfg)


def parse_value(text: str):
    """A command-line value read as TOML (``0.5``, ``true``, ``[1, 99]``, ``"x"``); anything
    that is not TOML is taken as a bare word (``stft``, ``none``: strings). The one parser of
    ``--set section.key=value`` and ``sigalex render -p key=value``."""
    try:
        return tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()


def parse_override(text: str) -> tuple[list[str], object]:
    """``"train.lr=0.001"`` → (["train", "lr"], 0.001); the value is read by :func:`parse_value`."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected section.key=value")
    key, value = (part.strip() for part in text.split("=", 1))
    path = key.split(".")
    if path[0] == "tune" and len(path) > 2:  # a dimension: tune.train.lr={low=1e-4, high=0.1}
        path = ["tune", ".".join(path[1:])]
    if len(path) != 2 or not all(path):
        raise ConfigError(f"--set {text!r}: the key must be section.key")
    return path, parse_value(value)


def load_config(path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a TOML recipe and apply ``section.key=value`` overrides.

    Raises
    ------
    ConfigError
        Missing or malformed file, unknown section or key, bad value.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such recipe") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    for text in overrides:
        (section, key), value = parse_override(text)
        raw.setdefault(section, {})
        if not isinstance(raw[section], dict):
            raise ConfigError(f"--set {text!r}: [{section}] is not a table")
        raw[section][key] = value
    try:
        cfg = from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if not cfg.output.name:
        cfg = dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, name=path.stem))
    return cfg


def to_dict(cfg: Config) -> dict:
    """Plain nested dict of a config (transform params flattened into ``[transform]``; the
    dimensions of ``[tune]`` as dotted keys, and ``[tune]`` only when it is not the default)."""
    out = {}
    for f in dataclasses.fields(cfg):
        section = getattr(cfg, f.name)
        if isinstance(section, TransformConfig):
            out[f.name] = {"method": section.method, **dict(section.params)}
        elif isinstance(section, TuneConfig):
            if section != TuneConfig():
                settings = {k.name: getattr(section, k.name) for k in dataclasses.fields(section)}
                del settings["space"]
                out[f.name] = {**settings, **{k: d.to_toml() for k, d in section.space.items()}}
        else:
            out[f.name] = {
                k.name: list(v) if isinstance(v := getattr(section, k.name), tuple) else v
                for k in dataclasses.fields(section)
            }
    return out


def to_toml(cfg: Config) -> str:
    """The config as TOML text that :func:`load_config` reads back to an equal config."""
    return dumps_tables(to_dict(cfg))
