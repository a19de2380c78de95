"""Training-time augmentation, batched on the device: on raw windows and on time-frequency maps.

:class:`Augment` bundles them; :class:`sigalex.models.SignalClassifier` applies it between its
transform and its renderer when training (``model(windows, augment=...)``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch


def time_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator | None = None):
    """Circularly shift each window ``(batch, n_channels, n_times)`` by up to ±``max_shift``
    samples (one shift per window, the same for all its channels)."""
    if max_shift <= 0:
        return x
    batch, _, n = x.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (batch, 1, 1), generator=generator)
    idx = (torch.arange(n)[None, None, :] - shifts) % n
    return torch.gather(x, -1, idx.to(x.device).expand_as(x))


def spec_augment(maps: torch.Tensor, *, time_masks: int, freq_masks: int, fraction: float):
    """Zero random bands of ``(batch, n_channels, n_freqs, n_frames)`` maps (SpecAugment).

    Each example gets ``time_masks`` bands across time and ``freq_masks`` across frequency, each
    up to ``fraction`` of its axis wide; zeros render as the lowest colour.
    """
    if not (time_masks or freq_masks):
        return maps
    batch, _, n_freqs, n_frames = maps.shape
    keep = torch.ones(batch, 1, n_freqs, n_frames, device=maps.device, dtype=torch.bool)
    for axis, count, size in ((3, time_masks, n_frames), (2, freq_masks, n_freqs)):
        width_max = max(1, int(fraction * size))
        for _ in range(count):
            width = torch.randint(0, width_max + 1, (batch, 1, 1, 1), device=maps.device)
            start = (torch.rand(batch, 1, 1, 1, device=maps.device) * (size - width + 1)).long()
            pos = torch.arange(size, device=maps.device)
            pos = pos.view(1, 1, 1, -1) if axis == 3 else pos.view(1, 1, -1, 1)
            keep &= ~((pos >= start) & (pos < start + width))
    return maps * keep


def freq_warp(maps: torch.Tensor, max_warp: float) -> torch.Tensor:
    """Stretch or squeeze the frequency axis of each map ``(batch, n_channels, n_freqs,
    n_frames)`` by a random factor in ``[1 - max_warp, 1 + max_warp]``, anchored at the lowest
    bin (vocal tract length perturbation: another speaker's formants, another patient's
    rhythms). Linear interpolation between bins; bins drawn from above the top are zero."""
    if max_warp <= 0:
        return maps
    batch, _, n_freqs, n_frames = maps.shape
    factor = 1 + (torch.rand(batch, 1, device=maps.device) * 2 - 1) * max_warp
    src = torch.arange(n_freqs, device=maps.device, dtype=maps.dtype)[None, :] / factor
    low = src.floor().long().clamp(max=n_freqs - 1)
    high = (low + 1).clamp(max=n_freqs - 1)
    frac = (src - low).clamp(0, 1)
    inside = src <= n_freqs - 1

    def rows(index: torch.Tensor) -> torch.Tensor:  # (batch, n_freqs) → the maps' rows
        return maps.gather(2, index[:, None, :, None].expand(-1, maps.shape[1], -1, n_frames))

    w = frac[:, None, :, None]
    out = rows(low) * (1 - w) + rows(high) * w
    return out * inside[:, None, :, None]


@dataclass(frozen=True)
class Mix:
    """Mixup of one batch: each example becomes ``lam`` of itself and ``1 - lam`` of example
    ``perm[i]``, and so does its loss (:meth:`Augment.drawn`)."""

    perm: torch.Tensor
    lam: float


def mix(maps: torch.Tensor, m: Mix | None) -> torch.Tensor:
    """``lam * maps + (1 - lam) * maps[perm]`` (magnitudes: the sum of two recordings' maps)."""
    if m is None:
        return maps
    return m.lam * maps + (1 - m.lam) * maps[m.perm.to(maps.device)]


@dataclass(frozen=True)
class Augment:
    """What to randomise in a training batch.

    Attributes
    ----------
    max_shift : int
        Samples: circular shift of each raw window (:func:`time_shift`).
    time_masks, freq_masks : int
        SpecAugment bands per example (:func:`spec_augment`).
    mask_fraction : float
        Widest band, as a fraction of its axis.
    max_warp : float
        Frequency-axis stretch of each map, up to this fraction (:func:`freq_warp`).
    mixup : float
        ``alpha`` of the Beta(alpha, alpha) mixup weight; 0 = off. :meth:`drawn` draws a
        batch's :class:`Mix`, which ``mix`` then carries.
    """

    max_shift: int = 0
    time_masks: int = 0
    freq_masks: int = 0
    mask_fraction: float = 0.1
    max_warp: float = 0.0
    mixup: float = 0.0
    mix: Mix | None = None

    def drawn(self, batch: int) -> Augment:
        """This augmentation with a fresh :class:`Mix` for a batch of ``batch`` (itself when
        mixup is off). The weight is the larger of ``lam`` and ``1 - lam``, so each example's
        own label stays the main one."""
        if self.mixup <= 0 or batch < 2:
            return self
        lam = float(torch.distributions.Beta(self.mixup, self.mixup).sample())
        return replace(self, mix=Mix(torch.randperm(batch), max(lam, 1 - lam)))

    def windows(self, x: torch.Tensor) -> torch.Tensor:
        return time_shift(x, self.max_shift)

    def maps(self, maps: torch.Tensor) -> torch.Tensor:
        maps = freq_warp(maps, self.max_warp)
        maps = spec_augment(
            maps, time_masks=self.time_masks, freq_masks=self.freq_masks,
            fraction=self.mask_fraction,
        )  # fmt: skip
        return mix(maps, self.mix)


__all__ = ["Augment", "Mix", "freq_warp", "mix", "spec_augment", "time_shift"]
