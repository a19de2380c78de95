"""Figures of explanations: a window's image with its heat map on axes in seconds and Hz, and
the dataset view (attribution per frequency, one line per class).

The image is drawn on the map's own grid: Render's resize maps the edges of the (tiled) map grid
onto the image's edges (``align_corners=False``), so pixel ``y`` of an image ``H`` high shows
map row ``(y + 0.5) * n_rows / H - 0.5``. The axes are placed in map-cell coordinates and
labelled with the transform's own frequencies and times at those cells (frequency rows are
flipped: low frequencies at the bottom), so mel and log frequency axes read right.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.ticker import MaxNLocator

from ..plots import _new_figure, _save
from .attribution import Explanation

HEAT_CMAP = "jet"


def _nice(lo: float, hi: float, n: int) -> np.ndarray:
    """About ``n`` round values in ``[lo, hi]``."""
    ticks = np.asarray(MaxNLocator(nbins=n, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi))
    return ticks[(ticks >= lo - 1e-9) & (ticks <= hi + 1e-9)]


def _log_ticks(lo: float, hi: float) -> np.ndarray:
    out = [m * 10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
           for m in (1, 2, 5)]  # fmt: skip
    ticks = np.array([v for v in out if lo - 1e-9 <= v <= hi + 1e-9])
    return ticks if len(ticks) >= 2 else _nice(lo, hi, 4)


def frequency_ticks(freqs: np.ndarray, *, max_ticks: int = 6) -> np.ndarray:
    """Round frequencies to label an axis of ``freqs``, spread evenly over its rows (mel and
    log axes crowd linear ticks at the top: candidates on a linear and a 1-2-5 grid are kept
    when at least ``1 / max_ticks`` of the axis apart in rows)."""
    lo, hi = float(freqs[0]), float(freqs[-1])
    candidates = list(_nice(lo, hi, 10))
    if lo > 0:
        candidates += list(_log_ticks(lo, hi))
    rows = np.interp(candidates, freqs, np.arange(len(freqs)))
    gap = (len(freqs) - 1) / max_ticks
    kept: list[tuple[float, float]] = []
    for value, row in sorted(zip(candidates, rows, strict=True), key=lambda vr: vr[1]):
        if all(abs(row - r) >= gap for _, r in kept):
            kept.append((value, row))
    return np.array([v for v, _ in kept])


def plot_explanation(exp: Explanation, i: int, path, *, title: str | None = None) -> Path:
    """The image of window ``i`` (grey) with its heat map over it, axes in seconds and Hz."""
    freqs, times = exp.frequencies_hz, exp.times_s[i]
    n_f, n_t = len(freqs), len(times)
    names = exp.channel_names or [""]
    n_tiles = len(names) if exp.tiled else 1
    cols = math.ceil(math.sqrt(n_tiles))
    rows = math.ceil(n_tiles / cols)
    width = min(4.0 + 2.2 * cols, 14.0)
    fig = _new_figure(width, min(3.0 + 1.6 * rows, 12.0))
    ax = fig.add_subplot(1, 1, 1)
    extent = (-0.5, cols * n_t - 0.5, rows * n_f - 0.5, -0.5)  # map cells; row 0 at the top
    grey = exp.images[i].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    ax.imshow(
        grey, cmap="gray", vmin=0, vmax=255, extent=extent, aspect="auto", interpolation="nearest"
    )
    heat = exp.image_maps[i]
    top = float(heat.max())
    unit = heat / top if top > 0 else heat
    # The heat in colour, opaque where it is strong and clear where it is weak.
    rgba = matplotlib.colormaps[HEAT_CMAP](unit)
    rgba[..., 3] = 0.75 * np.sqrt(unit)
    ax.imshow(rgba, extent=extent, aspect="auto", interpolation="bilinear")
    mappable = ScalarMappable(Normalize(0.0, 1.0), cmap=HEAT_CMAP)
    fig.colorbar(mappable, ax=ax, label=f"{exp.method} attribution (of its maximum)", shrink=0.9)
    f_ticks = frequency_ticks(freqs)
    f_rows = np.interp(f_ticks, freqs, np.arange(n_f))
    if rows > 1:  # tiles stacked: no labels at the seams
        inner = (f_rows > 0.06 * n_f) & (f_rows < 0.94 * n_f)
        f_ticks, f_rows = f_ticks[inner], f_rows[inner]
    t_ticks = _nice(float(times[0]), float(times[-1]), max(2, 5 // cols))
    t_cols = np.interp(t_ticks, times, np.arange(n_t))
    if cols > 1:  # tiles side by side: no labels at the seams, where they would collide
        inner = (t_cols > 0.06 * n_t) & (t_cols < 0.94 * n_t)
        t_ticks, t_cols = t_ticks[inner], t_cols[inner]
    ypos, ylab, xpos, xlab = [], [], [], []
    for r in range(rows):
        ypos += list(r * n_f + (n_f - 1 - f_rows))
        ylab += [f"{v:g}" for v in f_ticks]
    for c in range(cols):
        xpos += list(c * n_t + t_cols)
        xlab += [f"{v:g}" for v in t_ticks]
    ax.set_yticks(ypos, ylab, fontsize=7 if rows > 2 else 9)
    ax.set_xticks(xpos, xlab, fontsize=7 if cols > 2 else 9)
    ax.set_xlabel("time in the recording (s)")
    ax.set_ylabel("frequency (Hz)")
    if exp.tiled:
        for k, name in enumerate(names):
            r, c = divmod(k, cols)
            ax.text(c * n_t + 0.5, r * n_f + 0.5, name, color="white", fontsize=7, va="top",
                    ha="left", bbox={"facecolor": "black", "alpha": 0.5, "pad": 1})  # fmt: skip
        for r in range(1, rows):
            ax.axhline(r * n_f - 0.5, color="white", lw=0.8)
        for c in range(1, cols):
            ax.axvline(c * n_t - 0.5, color="white", lw=0.8)
    k = exp.classes.index(exp.target[i])
    where = f"{exp.recording}: " if exp.recording else ""
    ax.set_title(
        title
        or f"{where}{exp.start_s[i]:.2f}–{exp.end_s[i]:.2f} s, class {exp.target[i]!r} "
        f"(p = {exp.probabilities[i, k]:.3f})",
        fontsize=9,
    )
    return _save(fig, path)


def plot_bands(frequencies_hz: np.ndarray, profiles: dict[str, np.ndarray], path, *,
               title: str | None = None) -> Path:  # fmt: skip
    """Mean share of attribution per frequency row, one line per class (``profiles``: class →
    ``(F,)``), x in Hz."""
    fig = _new_figure(6.5, 3.8)
    ax = fig.add_subplot(1, 1, 1)
    for name, profile in profiles.items():
        ax.plot(frequencies_hz, profile, marker=".", lw=1.5, label=name)
    freqs = np.asarray(frequencies_hz)
    if freqs[0] > 0 and freqs[-1] / freqs[0] > 20:
        ax.set_xscale("log")
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("share of attribution per frequency row")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(title="true class", fontsize=8)
    ax.set_title(title or "Where the model looks: attribution summed over time", fontsize=9)
    return _save(fig, path)


__all__ = ["frequency_ticks", "plot_bands", "plot_explanation"]
