"""Training-time augmentation, batched on the device: on raw windows and on time-frequency maps.

:class:`Augment` bundles them; :class:`sigalex.models.SignalClassifier` applies it between its
transform and its renderer when training (``model(windows, augment=...)``).
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """

    max_shift: int = 0
    time_masks: int = 0
    freq_masks: int = 0
    mask_fraction: float = 0.1

    def windows(self, x: torch.Tensor) -> torch.Tensor:
        return time_shift(x, self.max_shift)

    def maps(self, maps: torch.Tensor) -> torch.Tensor:
        return spec_augment(
            maps, time_masks=self.time_masks, freq_masks=self.freq_masks,
            fraction=self.mask_fraction,
        )  # fmt: skip


__all__ = ["Augment", "spec_augment", "time_shift"]
