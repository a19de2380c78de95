"""Optimisers and learning-rate schedules: SGD with momentum (the 2012 recipe) or AdamW, cosine
or step schedules with linear warm-up, a learning-rate factor for pretrained layers."""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn

from ..config import Config


def _param_groups(model: nn.Module, cfg: Config, pretrained: bool) -> list[dict]:
    # The network's last layer (a Module's attributes are typed Tensor | Module by its __getattr__).
    head_layer = cast(nn.Module, model.head)
    head = {id(p) for p in head_layer.parameters()}
    body = [p for p in model.parameters() if p.requires_grad and id(p) not in head]
    top = [p for p in head_layer.parameters() if p.requires_grad]
    scale = cfg.model.pretrained_lr_scale if pretrained else 1.0
    groups = [{"params": top, "lr": cfg.train.lr, "name": "head"}]
    if body:
        groups.append({"params": body, "lr": cfg.train.lr * scale, "name": "body"})
    return groups


def build_optimizer(model: nn.Module, cfg: Config, pretrained: bool) -> torch.optim.Optimizer:
    t = cfg.train
    groups = _param_groups(model, cfg, pretrained)
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    return torch.optim.AdamW(groups, lr=t.lr, weight_decay=t.weight_decay)


def build_scheduler(optimizer, cfg: Config, steps_per_epoch: int):
    t = cfg.train
    total = max(1, t.epochs * steps_per_epoch)
    warmup = t.warmup_epochs * steps_per_epoch

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if t.schedule == "none":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        if t.schedule == "step":
            return 0.1 ** int(3 * min(progress, 0.999))
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


__all__ = ["build_optimizer", "build_scheduler"]
