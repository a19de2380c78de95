"""The checkpoint contract: one versioned format, written by training, read by everything else.

A checkpoint file is a dict of plain values that ``torch.load(path, weights_only=True)`` reads:

``format`` / ``format_version``
    ``"sigalex-checkpoint"`` and :data:`FORMAT_VERSION`.
``sigalex_version``
    The version that wrote it.
``spec``
    :class:`~sigalex.models.ModelSpec` as a dict: classes, positive class, sample rate, window
    and stride, channels, how clips are fitted, the architecture.
``config``
    The full recipe (:func:`sigalex.config.to_dict`): it rebuilds the front end.
``state_dict``
    The network's weights (torchvision's key layout).
``parent``
    When fine-tuned from another sigalex checkpoint: its path, sha256, classes and front end.
``training``
    Epochs, the best epoch and its validation score, the history, the split, the weights the
    run started from.
``resume``
    ``last.pt`` only: optimiser, scheduler, every random-number stream and the callbacks' state
    (early stopping), so a resumed run ends where an uninterrupted one would.

:func:`load_checkpoint` migrates what earlier versions wrote (version 1: sigalex 0.1's
unversioned dict) and refuses a newer format with a one-line message; :func:`load_model` is the
one place a model is rebuilt from a checkpoint (training's evaluation, prediction, export), and
:func:`initial_model` the one place a recipe's starting weights are chosen (ImageNet, a state
dict, or a parent sigalex checkpoint to fine-tune, whose front end must match).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ._files import atomic_path, read_weights_file, sha256_file
from ._version import __version__
from .config import Config, from_dict, to_dict
from .errors import ConfigError, DataError, ParameterError
from .metrics import positive_class_of
from .models.net import SignalClassifier, build_frontend
from .models.spec import ModelSpec
from .models.weights import (
    WEIGHTS,
    build_model,
    build_network,
    freeze_layers,
    load_pretrained,
)

FORMAT = "sigalex-checkpoint"
FORMAT_VERSION = 2
"""Version 2: this layout. Version 1: sigalex 0.1's unversioned dict (``version``,
``state_dict``, ``config``, ``classes``, ``architecture``, ``sample_rate``, ``n_channels``,
``n_times``, ``channel_names``, ``weights_used``, ``epoch``, ``best_epoch``, ``best_metric``,
``history``, ``split``; ``last.pt`` adding ``optimizer``, ``scheduler``, ``torch_rng``)."""

_V1_KEYS = {"state_dict", "config", "classes", "version"}


@dataclass
class Checkpoint:
    """A trained model and everything needed to use, fine-tune or resume it (module docs)."""

    spec: ModelSpec
    config: dict
    state_dict: dict
    sigalex_version: str = __version__
    parent: dict | None = None
    training: dict = field(default_factory=dict)
    resume: dict | None = None
    format_version: int = FORMAT_VERSION
    path: Path | None = field(default=None, compare=False)

    @property
    def recipe(self) -> Config:
        """The recipe as a checked :class:`~sigalex.config.Config`."""
        return from_dict(self.config)

    def payload(self) -> dict:
        """The dict written to disk."""
        out = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "sigalex_version": self.sigalex_version,
            "spec": self.spec.to_dict(),
            "config": self.config,
            "state_dict": self.state_dict,
            "parent": self.parent,
            "training": self.training,
        }
        if self.resume is not None:
            out["resume"] = self.resume
        return out

    @classmethod
    def from_payload(cls, payload, where: str = "checkpoint") -> Checkpoint:
        """Read a loaded payload, migrating earlier formats; ``DataError`` for anything else."""
        if not isinstance(payload, Mapping):
            raise DataError(
                f"{where}: not a sigalex checkpoint (it holds a {type(payload).__name__})"
            )
        if payload.get("format") == FORMAT:
            version = payload.get("format_version")
            if not isinstance(version, int) or version > FORMAT_VERSION:
                raise DataError(
                    f"{where}: checkpoint format {version} was written by sigalex "
                    f"{payload.get('sigalex_version', '?')}, newer than this sigalex "
                    f"({__version__}, format {FORMAT_VERSION}); upgrade sigalex to read it"
                )
            return _read_v2(payload, where)
        if _V1_KEYS <= set(payload):
            return _migrate_v1(payload, where)
        if not payload:
            raise DataError(f"{where}: the checkpoint is empty")
        raise DataError(
            f"{where}: not a sigalex checkpoint (needs {', '.join(sorted(_V1_KEYS))} or a "
            f"'format' of {FORMAT!r}; it has {', '.join(sorted(map(str, payload))[:8])})"
        )


def _spec_from(values: Mapping, where: str) -> ModelSpec:
    try:
        return ModelSpec.from_dict(values)
    except (ParameterError, TypeError) as exc:
        raise DataError(f"{where}: the checkpoint's model spec is not valid: {exc}") from exc


def _config(raw, where: str) -> dict:
    if not isinstance(raw, Mapping):
        raise DataError(f"{where}: the checkpoint's config is not a table ({type(raw).__name__})")
    try:
        return to_dict(from_dict(raw))  # checked, defaults filled in
    except ConfigError as exc:
        raise DataError(f"{where}: the checkpoint's recipe is not valid here: {exc}") from exc


def _read_v2(payload: Mapping, where: str) -> Checkpoint:
    missing = [k for k in ("spec", "config", "state_dict") if k not in payload]
    if missing:
        raise DataError(f"{where}: the checkpoint lacks {missing}")
    if not isinstance(payload["spec"], Mapping):
        raise DataError(f"{where}: the checkpoint's spec is not a table")
    return Checkpoint(
        spec=_spec_from(payload["spec"], where),
        config=_config(payload["config"], where),
        state_dict=dict(payload["state_dict"]),
        sigalex_version=str(payload.get("sigalex_version", "?")),
        parent=payload.get("parent"),
        training=dict(payload.get("training") or {}),
        resume=payload.get("resume"),
        format_version=int(payload["format_version"]),
    )


def _migrate_v1(payload: Mapping, where: str) -> Checkpoint:
    """sigalex 0.1's unversioned dict → a version-2 :class:`Checkpoint`.

    Version 1 did not store the positive class, the stride or the longest training clip: the
    positive class comes from the one rule (:func:`sigalex.metrics.positive_class_of`), the
    stride from the recipe, and whole-recording models slide over anything longer than their
    window.
    """
    missing = [k for k in ("sample_rate", "n_times", "n_channels") if k not in payload]
    if missing:
        raise DataError(f"{where}: the checkpoint lacks {missing}; retrain with this sigalex")
    config = _config(payload["config"], where)
    cfg = from_dict(config)
    classes = [str(c) for c in payload["classes"]]
    try:
        positive = positive_class_of(classes, cfg.eval.positive_class or None)
    except ParameterError as exc:
        raise DataError(f"{where}: {exc}") from exc
    rate, n_times = float(payload["sample_rate"]), int(payload["n_times"])
    spec = _spec_from(
        {
            "classes": classes,
            "sample_rate": rate,
            "n_channels": int(payload["n_channels"]),
            "n_times": n_times,
            "channel_names": list(payload.get("channel_names") or []),
            "positive_class": positive,
            "window_s": cfg.windows.window_s,
            "stride_s": cfg.windows.stride_s,
            "fit": cfg.windows.fit,
            "max_clip_s": 0.0 if cfg.windows.window_s else n_times / rate,
            "architecture": str(payload.get("architecture", cfg.model.architecture)),
        },
        where,
    )
    training = {
        k: payload[k]
        for k in ("epoch", "best_epoch", "best_metric", "history", "split", "weights_used")
        if k in payload
    }
    resume = None
    if "optimizer" in payload:
        resume = {
            "optimizer": payload["optimizer"],
            "scheduler": payload.get("scheduler"),
            "rng": {"torch": payload["torch_rng"]} if "torch_rng" in payload else {},
        }
    return Checkpoint(
        spec=spec,
        config=config,
        state_dict=dict(payload["state_dict"]),
        sigalex_version=str(payload.get("version", "?")),
        training=training,
        resume=resume,
        format_version=1,
    )


# ---------------------------------------------------------------------------------------------
# Files


def save_checkpoint(path, checkpoint: Checkpoint) -> Path:
    """``torch.save`` to a temporary file, then rename: a kill never leaves half a checkpoint."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(checkpoint.payload(), tmp)
    return path


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint, migrating earlier formats (module docs).

    Raises
    ------
    DataError
        Missing, empty, corrupt, foreign or newer-format file.
    """
    path = Path(path)
    ckpt = Checkpoint.from_payload(read_weights_file(path), str(path))
    ckpt.path = path
    return ckpt


def load_model(checkpoint, *, device=None) -> SignalClassifier:
    """The model unit of a checkpoint (a path or a :class:`Checkpoint`), in eval mode.

    Raises
    ------
    DataError
        A checkpoint whose recipe or weights do not fit.
    """
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    where = str(ckpt.path or "checkpoint")
    cfg = ckpt.recipe
    spec = ckpt.spec
    try:
        frontend = build_frontend(cfg, spec.sample_rate)
        network = build_network(
            spec.architecture, num_classes=len(spec.classes), dropout=cfg.model.dropout,
            width=cfg.model.width, groups=cfg.model.groups,
        )  # fmt: skip
    except ConfigError as exc:  # model.groups = 2 in a recipe of an "alexnet" model, say
        raise DataError(f"{where}: the checkpoint's recipe is not valid here: {exc}") from exc
    try:
        network.load_state_dict(ckpt.state_dict)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise DataError(
            f"{where}: the weights do not fit a {spec.architecture} model: {exc}"
        ) from exc
    model = SignalClassifier(
        frontend, network, spec, channels_last=cfg.train.channels_last, amp=cfg.train.amp
    )
    if device is not None:
        model.to(device)
    return model.eval()


# ---------------------------------------------------------------------------------------------
# Starting weights and fine-tuning


def _named_weights(weights: str) -> bool:
    return weights.lower() in ("", "none", "random") or weights in WEIGHTS


def frontend_of(config: Mapping) -> dict:
    """The front end of a recipe dict: its ``transform`` and ``render`` sections."""
    return {
        "transform": dict(config.get("transform", {})),
        "render": dict(config.get("render", {})),
    }


def _differences(parent: dict, ours: dict) -> list[str]:
    out = []
    for section in ("transform", "render"):
        keys = sorted(set(parent[section]) | set(ours[section]))
        for k in keys:
            a, b = parent[section].get(k), ours[section].get(k)
            if a != b:
                out.append(f"{section}.{k}: {a!r} in the checkpoint, {b!r} in the recipe")
    return out


def resolve_parent(cfg: Config) -> tuple[Config, Checkpoint | None]:
    """The parent checkpoint a recipe fine-tunes (``model.weights`` = a sigalex checkpoint), and
    the recipe with the front end ``model.frontend`` chooses.

    ``model.frontend = "same"`` (default): the recipe's front end must be the checkpoint's;
    ``"checkpoint"``: the checkpoint's ``[transform]`` and ``[render]`` replace the recipe's;
    ``"recipe"``: the recipe's are kept on purpose.

    Raises
    ------
    ConfigError
        A front end that differs under ``"same"`` (the message lists the differences and the
        two ways to choose), or another architecture, width or groups.
    DataError
        ``model.weights`` names a missing or unreadable file.
    """
    weights = cfg.model.weights
    if _named_weights(weights):
        return cfg, None
    path = Path(weights).expanduser()
    try:
        payload = read_weights_file(path)
    except DataError as exc:
        raise DataError(f"model.weights = {weights!r}: {exc}") from None
    if not isinstance(payload, Mapping) or not (
        payload.get("format") == FORMAT or _V1_KEYS <= set(payload)
    ):
        return cfg, None  # a plain state dict: initial_model loads it
    parent = Checkpoint.from_payload(payload, str(path))
    parent.path = path
    if parent.spec.architecture != cfg.model.architecture:
        raise ConfigError(
            f"model.weights = {weights!r} is a {parent.spec.architecture!r} model; the recipe "
            f"builds model.architecture = {cfg.model.architecture!r}"
        )
    parent_width = parent.recipe.model.width
    if parent_width != cfg.model.width:
        raise ConfigError(
            f"model.weights = {weights!r} is a model.width = {parent_width:g} network; the "
            f"recipe builds model.width = {cfg.model.width:g}"
        )
    parent_groups = parent.recipe.model.groups
    if parent_groups != cfg.model.groups:
        raise ConfigError(
            f"model.weights = {weights!r} is a model.groups = {parent_groups} network; the "
            f"recipe builds model.groups = {cfg.model.groups}"
        )
    ours = to_dict(cfg)
    diff = _differences(frontend_of(parent.config), frontend_of(ours))
    mode = cfg.model.frontend
    if diff and mode == "same":
        raise ConfigError(
            f"model.weights = {weights!r} was trained on other images ({'; '.join(diff[:4])}"
            f'{"; …" if len(diff) > 4 else ""}). Set model.frontend = "checkpoint" to keep the '
            "checkpoint's front end, or model.frontend = \"recipe\" to train on this recipe's "
            "images on purpose"
        )
    if mode == "checkpoint":
        ours.update(frontend_of(parent.config))
        cfg = from_dict(ours)
    return cfg, parent


def initial_model(
    cfg: Config, spec: ModelSpec, *, parent: Checkpoint | None = None, progress: bool = True
) -> tuple[SignalClassifier, str, dict | None]:
    """The model a recipe starts training from: ``(model, weights_used, parent_info)``.

    ``model.weights``: ``"imagenet"`` (downloaded and hash-checked; offline it falls back to
    random weights with a loud warning unless ``model.weights_required``), ``"none"``, a
    state-dict file, or a sigalex checkpoint (``parent``, from :func:`resolve_parent`): its
    network is loaded, its head kept only when the classes are the same, and ``parent_info``
    (path, sha256, classes, front end) is recorded in the new checkpoint. A path the user named
    that cannot be loaded is an error.
    """
    m = cfg.model
    n_classes = len(spec.classes)
    parent_info = None
    if _named_weights(m.weights):
        weights = None if m.weights.lower() in ("", "none", "random") else m.weights
        network, used = build_model(
            m.architecture, num_classes=n_classes, weights=weights,
            weights_required=m.weights_required, dropout=m.dropout, freeze=m.freeze,
            progress=progress, width=m.width, groups=m.groups,
        )  # fmt: skip
    else:
        path = Path(m.weights).expanduser()
        network = build_network(
            m.architecture, num_classes=n_classes, dropout=m.dropout, width=m.width,
            groups=m.groups,
        )  # fmt: skip
        if parent is not None:
            keep = tuple(parent.spec.classes) == tuple(spec.classes)
            load_pretrained(network, parent.state_dict, source=str(path), keep_head=keep)
            sha = sha256_file(path)
            used = f"checkpoint {path} (sha256 {sha[:16]})"
            parent_info = {
                "path": str(path),
                "sha256": sha,
                "classes": list(parent.spec.classes),
                "sigalex_version": parent.sigalex_version,
                "frontend": frontend_of(parent.config),
                "head_kept": keep,
            }
        else:
            from .models.weights import load_state_dict

            load_pretrained(network, load_state_dict(path), source=str(path))
            used = f"{path} ({path.name}, sha256 {sha256_file(path)[:16]})"
        freeze_layers(network, m.freeze, pretrained=True)
    model = SignalClassifier(
        build_frontend(cfg, spec.sample_rate), network, spec,
        channels_last=cfg.train.channels_last, amp=cfg.train.amp,
    )  # fmt: skip
    return model, used, parent_info


def new_checkpoint(
    model: SignalClassifier,
    cfg: Config,
    *,
    training: Mapping | None = None,
    parent: dict | None = None,
    resume: dict | None = None,
) -> Checkpoint:
    """A checkpoint of ``model`` trained by recipe ``cfg`` (the one way one is made).

    The state dict shares the model's tensors: save it before training goes on.
    """
    return Checkpoint(
        spec=model.spec,
        config=to_dict(cfg),
        state_dict=model.network.state_dict(),
        parent=parent,
        training=dict(training or {}),
        resume=resume,
    )


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Checkpoint",
    "frontend_of",
    "initial_model",
    "load_checkpoint",
    "load_model",
    "new_checkpoint",
    "resolve_parent",
    "save_checkpoint",
]
