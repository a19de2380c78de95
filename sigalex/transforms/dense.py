"""Export-safe forms of the transforms: real matrix products and gathers only.

ONNX has no complex tensors and no sparse products, and ``torch.stft`` needs opset 17 and
complex outputs; the graphs ``sigalex export`` writes use these instead (DESIGN.md, "Facts
worth knowing"). They give the maps of the fast paths to float32 rounding, for one fixed
signal length (an exported model's ``n_times``), and are used only while a module's
``export_safe`` flag is set (:meth:`sigalex.frontend.ImageFrontend.export_safe`): PyTorch's own
paths (``torch.stft``, FFTs, sparse folded banks) stay as they are.

- :func:`pad_signal`: centre/reflect padding as a gather with a fixed index (or a constant pad);
- :func:`dft_frames`: the windowed DFT rows of the bins kept, as a strided convolution;
- :func:`folded_bank_operator` and :func:`apply_dense_folded`: a spectral filter bank applied
  to a signal and decimated, ``ifft(fft(x, n) * bank[r])[::hop][:n_out]``, as three real
  matrix products (a Cooley–Tukey split of the DFT at the hop, so no ``n × n`` DFT matrix).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: ``torch.nn.functional.pad`` modes → ``numpy.pad`` modes (the index of a padded signal).
_NUMPY_PAD = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad_signal(x: torch.Tensor, left: int, right: int, mode: str) -> torch.Tensor:
    """``torch.nn.functional.pad(x, (left, right), mode=mode)`` on the last axis of
    ``(batch, n_times)``: a constant pad, or a gather with a fixed index for ``reflect``,
    ``replicate`` and ``circular`` (every opset has Gather; Pad's modes vary).

    Shapes are read with ``int()`` in these functions: a traced forward pass sees them as
    tensors, and the signal length of an export is fixed."""
    if left == 0 and right == 0:
        return x
    if mode == "constant":
        return torch.nn.functional.pad(x, (left, right))
    index = np.pad(np.arange(int(x.shape[-1])), (left, right), mode=_NUMPY_PAD[mode])  # type: ignore[call-overload]
    return x.index_select(-1, torch.from_numpy(index).to(x.device))


def dft_rows(n_fft: int, bins: np.ndarray, window: np.ndarray) -> torch.Tensor:
    """Windowed DFT rows of ``bins``: ``(2 * len(bins), 1, n_fft)`` float64, cosines then
    minus sines (a ``conv1d`` weight: output channel ``k`` is the real part of bin ``k``,
    ``len(bins) + k`` its imaginary part)."""
    k = np.asarray(bins, dtype=np.float64)[:, None]
    phase = 2 * np.pi * k * np.arange(n_fft)[None] / n_fft
    rows = np.concatenate([np.cos(phase), -np.sin(phase)]) * window[None]
    return torch.from_numpy(rows)[:, None, :]


def dft_frames(x: torch.Tensor, rows: torch.Tensor, hop_length: int) -> torch.Tensor:
    """``|X|**2`` of the bins of ``rows`` (:func:`dft_rows`) for frames of ``x`` ``(batch,
    n_padded)`` every ``hop_length`` samples: ``(batch, n_bins, n_frames)``."""
    y = torch.nn.functional.conv1d(x[:, None], rows.to(x.dtype), stride=hop_length)
    n = int(y.shape[1]) // 2
    return y[:, :n].square() + y[:, n:].square()


@dataclass(frozen=True)
class FoldedOperator:
    """The three real matrices of :func:`apply_dense_folded` for one signal length.

    ``first`` ``(q_in, 2 q)``: a length-``q`` DFT of each of the ``hop`` decimated phases of
    the signal; ``middle`` ``(q, 2 hop, 2 n_rows)``: per folded bin, the twiddles, the
    length-``hop`` DFT and the filter bank folded together; ``last`` ``(2 q, 2 n_out)``: the
    inverse DFT of length ``q`` at the ``n_out`` columns kept. Complex products are written as
    real ones on ``[re, im]`` pairs: ``[a, b] @ [[c, d], [-d, c]] = [ac - bd, ad + bc]``.
    """

    n_signal: int
    hop: int
    first: torch.Tensor
    middle: torch.Tensor
    last: torch.Tensor

    def to(self, device, dtype) -> FoldedOperator:
        return FoldedOperator(
            self.n_signal, self.hop, *(t.to(device=device, dtype=dtype) for t in
                                       (self.first, self.middle, self.last)),
        )  # fmt: skip


def _pairs(c: np.ndarray) -> np.ndarray:
    """A complex ``(..., m, n)`` matrix as the real ``(..., 2m, 2n)`` one acting on
    ``[re, im]`` row vectors."""
    re, im = np.real(c), np.imag(c)
    top = np.concatenate([re, im], axis=-1)
    bottom = np.concatenate([-im, re], axis=-1)
    return np.concatenate([top, bottom], axis=-2)


def folded_bank_operator(
    bank: np.ndarray, *, n_signal: int, hop: int, n_out: int, rel_tol: float = 1e-9
) -> FoldedOperator:
    """The matrices that apply ``bank`` to a signal of ``n_signal`` samples, decimated.

    ``bank`` is complex or real ``(n_rows, n_fft)``: filter ``r``'s gain at each bin of an
    ``n_fft``-point DFT grid (``n_fft`` a multiple of ``hop``, and ``>= n_signal``). The
    result maps ``x`` to ``ifft(fft(x, n_fft) * bank[r])[j * hop]`` for ``j < n_out``: the
    same values :func:`~sigalex.transforms.base.apply_folded_bank` gives with the sparse
    folded bank (which leaves out gains under 1e-9 of each filter's peak).

    With ``n_fft = hop * q`` and the signal's samples ``m = hop * m2 + m1``, the DFT splits
    (Cooley–Tukey) into a length-``q`` DFT over ``m2`` for each phase ``m1``, twiddles, and a
    length-``hop`` DFT over ``m1``; bins ``f + q * k2`` fold into ``f`` (decimation in time is
    aliasing in frequency), so the length-``hop`` DFT, the bank and the fold meet in one small
    ``(2 hop, 2 n_rows)`` matrix per folded bin. Gains under ``rel_tol`` of each filter's peak
    are zero, as in the sparse bank (in float32 they would be subnormal numbers, which made
    the products 300 times slower on a CPU).
    """
    bank = np.asarray(bank, dtype=np.complex128)
    peak = np.abs(bank).max(axis=1, keepdims=True)
    bank = np.where(np.abs(bank) > rel_tol * peak, bank, 0)
    n_rows, n_fft = bank.shape
    if n_fft % hop or n_fft < n_signal:
        raise ValueError(f"{n_fft=} must be a multiple of {hop=} and >= {n_signal=}")
    q = n_fft // hop
    q_in = -(-n_signal // hop)
    m2 = np.arange(q_in)[:, None]
    f = np.arange(q)
    first = np.exp(-2j * np.pi * m2 * f[None] / q)  # (q_in, q)
    m1 = np.arange(hop)
    w_hop = np.exp(-2j * np.pi * np.outer(m1, m1) / hop)  # (m1, k2)
    folded = bank.reshape(n_rows, hop, q)  # [r, k2, f]
    c = np.einsum("rkf,mk->fmr", folded, w_hop) / hop  # (q, hop, n_rows)
    c *= np.exp(-2j * np.pi * np.outer(f, m1) / n_fft)[:, :, None]
    j = np.arange(n_out)
    last = np.exp(2j * np.pi * np.outer(f, j) / q) / q  # (q, n_out)
    # C-contiguous: a batched product with a strided operand (numpy's einsum leaves ``c``
    # transposed in memory) was a thousand times slower.
    return FoldedOperator(
        n_signal, hop,
        *(torch.from_numpy(np.ascontiguousarray(m)) for m in (
            np.concatenate([first.real, first.imag], axis=1), _pairs(c), _pairs(last)
        )),
    )  # fmt: skip


def apply_dense_folded(x: torch.Tensor, op: FoldedOperator) -> torch.Tensor:
    """Magnitudes ``|ifft(fft(x, n_fft) * bank[r])[j * hop]|`` of ``x`` ``(batch, n_signal)``
    through :func:`folded_bank_operator`'s matrices: ``(batch, n_rows, n_out)``."""
    hop, q_in = op.hop, op.first.shape[0]
    q = op.first.shape[1] // 2
    n_rows = op.middle.shape[-1] // 2
    x = torch.nn.functional.pad(x, (0, q_in * hop - int(x.shape[-1])))
    phases = x.reshape(-1, q_in, hop).transpose(1, 2)  # (batch, hop, q_in)
    a = torch.matmul(phases, op.first)  # (batch, hop, 2q): [re | im] of each phase's DFT
    a = a.reshape(-1, hop, 2, q).permute(3, 0, 2, 1).reshape(q, -1, 2 * hop)
    y = torch.matmul(a, op.middle)  # (q, batch, 2 n_rows): the folded, filtered spectrum
    y = y.reshape(q, -1, 2, n_rows).permute(1, 3, 2, 0).reshape(-1, n_rows, 2 * q)
    z = torch.matmul(y, op.last)  # (batch, n_rows, 2 n_out)
    n_out = int(z.shape[-1]) // 2
    return (z[..., :n_out].square() + z[..., n_out:].square()).sqrt()


__all__ = [
    "FoldedOperator",
    "apply_dense_folded",
    "dft_frames",
    "dft_rows",
    "folded_bank_operator",
    "pad_signal",
]
