"""``sigalex explain`` behind the command line: explanations of recordings into a folder, and
the dataset view of a run directory's test set.

Recordings: the windows of each input with the highest probability of the explained class (at
most ``max_windows``; ``start_s``/``duration_s`` restrict them to a span) are attributed, drawn
(``<stem>_<start>s_<class>.png``) and listed in ``explanations.tsv``; an input that cannot be
read goes to ``errors.tsv`` and the others go on. A run directory: the test side of its split
is rebuilt from its recipe (:func:`sigalex.train.data.split_side`, which also gives int8
calibration its training side), each window is attributed to its true class, and
``bands.png``/``bands.tsv`` give the mean share of attribution per frequency, one line per class.
"""

from __future__ import annotations

import heapq
import re
from pathlib import Path

import numpy as np
import torch

from .._files import write_tsv
from ..checkpoint import load_checkpoint, load_model
from ..errors import DataError, ParameterError
from ..inference.inputs import find_inputs
from ..inference.outputs import unique_stems
from ..inference.predictor import Predictor
from ..inference.stream import error_reason, read_windows
from .attribution import METHODS, Explanation, concatenate, explain_windows, import_captum
from .figures import plot_bands, plot_explanation

EXPLANATION_COLUMNS = ("recording", "start_s", "end_s", "class", "probability", "method", "png",
                       "peak_hz", "peak_s")  # fmt: skip


def check_class(classes: list[str], name: str | None) -> None:
    """A one-line error for a class the model does not have, listing those it has."""
    if name is not None and name not in classes:
        raise ParameterError(f"unknown class {name!r}; the model's classes: {', '.join(classes)}")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-") or "x"


def _select(predictor: Predictor, rec, target: str | None, span, max_windows: int):
    """The ``max_windows`` windows of ``rec`` in ``span`` with the highest probability of
    ``target`` (of their most probable class without one), in time order:
    ``(windows, start_s, end_s)``."""
    best: list[tuple[float, int, np.ndarray, float, float]] = []
    k = None if target is None else predictor.classes.index(target)
    n = 0
    for x, s, e in read_windows(rec, predictor.spec, predictor.batch_size):
        keep = np.ones(len(s), bool)
        if span is not None:
            keep = (e > span[0]) & (s < span[1])
        if not keep.any():
            n += len(s)
            continue
        probs = predictor.predict_windows(x[keep])
        score = probs.max(1) if k is None else probs[:, k]
        for j, i in enumerate(np.flatnonzero(keep)):
            item = (float(score[j]), -(n + int(i)), x[i], float(s[i]), float(e[i]))
            if len(best) < max_windows:
                heapq.heappush(best, item)
            else:
                heapq.heappushpop(best, item)
        n += len(s)
    if not best:
        where = "" if span is None else f" in the span {span[0]:g}–{span[1]:g} s"
        raise DataError(f"{rec.name}: no window{where}")
    best.sort(key=lambda b: -b[1])
    return (np.stack([b[2] for b in best]), np.array([b[3] for b in best]),
            np.array([b[4] for b in best]))  # fmt: skip


def explain_source(
    predictor: Predictor, source, *, target=None, method: str = "gradcam",
    sample_rate: float | None = None, name: str | None = None,
) -> Explanation:  # fmt: skip
    """:meth:`sigalex.Predictor.explain`: windows (a 3-D array or tensor) or a recording (all
    its windows, placed in it)."""
    if target is None:
        target = predictor.positive_class
    if (torch.is_tensor(source) or isinstance(source, np.ndarray)) and np.ndim(source) == 3:
        return explain_windows(
            predictor.model, source, target=target, method=method,
            batch_size=predictor.batch_size,
        )  # fmt: skip
    parts = []
    for rec in predictor.open(source, sample_rate, name=name):
        for x, s, e in read_windows(rec, predictor.spec, predictor.batch_size):
            part = explain_windows(
                predictor.model, x, target=target, method=method, start_s=s, end_s=e,
                batch_size=predictor.batch_size,
            )  # fmt: skip
            part.recording = rec.name
            parts.append(part)
    return concatenate(parts)


def explain_to_dir(
    checkpoint,
    inputs,
    out,
    *,
    target: str | None = None,
    method: str = "gradcam",
    start_s: float | None = None,
    duration_s: float | None = None,
    sample_rate: float | None = None,
    max_windows: int = 8,
    device=None,
    batch_size: int = 16,
) -> dict:
    """Explain recordings into ``out``: a PNG per chosen window, ``explanations.tsv`` and
    ``errors.tsv``. Returns ``{"explained", "failed", "windows", "exit_status"}`` (0 all
    inputs explained, 3 some failed, 4 none).

    Raises
    ------
    SigalexError
        Captum missing, an unreadable checkpoint, an unknown class or method.
    """
    import_captum()
    if method not in METHODS:
        raise ParameterError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if isinstance(max_windows, bool) or not isinstance(max_windows, int) or max_windows < 1:
        raise ParameterError(f"max_windows={max_windows!r} must be a positive integer")
    predictor = Predictor.from_checkpoint(checkpoint, device=device, batch_size=batch_size)
    check_class(predictor.classes, target)
    target = target or predictor.positive_class
    span = None
    if start_s is not None or duration_s is not None:
        a = 0.0 if start_s is None else float(start_s)
        span = (a, a + (float("inf") if duration_s is None else float(duration_s)))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files, problems = find_inputs(inputs)
    errors = [(str(p), reason) for p, reason in problems]
    rows, explained = [], 0
    stems = unique_stems({str(p): Path(p).stem for p in files})  # a/rec.edf, b/rec.edf apart
    for path in files:
        try:
            for rec in predictor.open(path, sample_rate, name=str(path)):
                x, s, e = _select(predictor, rec, target, span, max_windows)
                exp = explain_windows(predictor.model, x, target=target, method=method,
                                      start_s=s, end_s=e, batch_size=batch_size)  # fmt: skip
                exp.recording = rec.name
                rows += _write_pngs(exp, out, stems[str(path)])
            explained += 1
        except (DataError, ParameterError, OSError, ValueError) as exc:
            errors.append((str(path), error_reason(exc)))
    write_tsv(out / "explanations.tsv", EXPLANATION_COLUMNS, rows)
    write_tsv(out / "errors.tsv", ("recording", "reason"), errors)
    n_inputs = len(files) + len(problems)
    status = 0 if not errors else (4 if explained == 0 else 3)
    return {"explained": explained, "failed": len(errors), "inputs": n_inputs,
            "windows": len(rows), "exit_status": status}  # fmt: skip


def _write_pngs(exp: Explanation, out: Path, stem: str) -> list[list]:
    rows = []
    for i, (peak_hz, peak_s) in enumerate(exp.peaks()):
        name = f"{_safe(stem)}_{exp.start_s[i]:g}s_{_safe(exp.target[i])}.png"
        plot_explanation(exp, i, out / name)
        k = exp.classes.index(exp.target[i])
        rows.append([exp.recording, round(float(exp.start_s[i]), 6),
                     round(float(exp.end_s[i]), 6), exp.target[i],
                     round(float(exp.probabilities[i, k]), 6), exp.method, name,
                     round(peak_hz, 4), round(peak_s, 4)])  # fmt: skip
    return rows


def is_run_dir(path) -> bool:
    """A ``sigalex run`` directory: config.toml, checkpoint.pt and test_predictions.tsv."""
    p = Path(path)
    return p.is_dir() and all(
        (p / name).is_file() for name in ("config.toml", "checkpoint.pt", "test_predictions.tsv")
    )


def test_side_windows(ckpt, n: int, *, seed: int = 0):
    """Up to ``n`` windows of the test side of the checkpoint's split (at random, ``seed``),
    in index order: ``(windows, targets, start_s, end_s, info)``."""
    from ..train.data import split_side

    test = split_side(ckpt, "test", n, seed=seed)
    if test.n_side == 0:
        raise DataError(f"{ckpt.path}: the split has no test windows")
    chosen = [test.data.windows[i] for i in test.indices]
    starts = np.array([w.start / w.sample_rate for w in chosen])
    ends = np.array([w.stop / w.sample_rate for w in chosen])
    info = {"side": "test", "n_windows": len(test.indices), "of_test_windows": test.n_side,
            "split": test.split.description}  # fmt: skip
    return test.windows, test.data.targets[test.indices], starts, ends, info


def explain_run_dir(
    run_dir, out, *, method: str = "gradcam", max_windows: int = 200, device=None,
    batch_size: int = 16,
) -> dict:  # fmt: skip
    """The dataset view of a run directory: ``bands.png`` and ``bands.tsv`` (frequency_hz,
    then the mean share of attribution per frequency row of each true class) in ``out``.

    Up to ``max_windows`` test windows (at random), each attributed to its true class; a
    window's map is scaled to a total of 1 and summed over time, and the class's line is the
    mean of these over its windows (windows with no attribution at all are left out and
    counted in ``unattributed``)."""
    import_captum()
    if method not in METHODS:
        raise ParameterError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    run_dir, out = Path(run_dir), Path(out)
    ckpt = load_checkpoint(run_dir / "checkpoint.pt")
    windows, targets, starts, ends, info = test_side_windows(ckpt, max_windows)
    predictor = Predictor(load_model(ckpt), device=device, batch_size=batch_size)
    names = [predictor.classes[int(t)] for t in targets]
    exp = explain_windows(predictor.model, windows, target=names, method=method,
                          start_s=starts, end_s=ends, batch_size=batch_size)  # fmt: skip
    profiles, counts = {}, {}
    bands = exp.band_profile()
    # A window with no attribution at all (Grad-CAM's ReLU can leave none) has no profile.
    attributed = bands.sum(1) > 0
    for c, name in enumerate(predictor.classes):
        mine = (np.asarray(targets) == c) & attributed
        if mine.any():
            profiles[name] = bands[mine].mean(0)
            counts[name] = int(mine.sum())
    info["unattributed"] = int((~attributed).sum())
    out.mkdir(parents=True, exist_ok=True)
    legend = {f"{name} (n={counts[name]})": p for name, p in profiles.items()}
    plot_bands(exp.frequencies_hz, legend, out / "bands.png",
               title=f"{run_dir.name}: {method} attribution of the true class, "
               f"{info['n_windows']} test windows")  # fmt: skip
    columns = ["frequency_hz", *profiles]
    rows = [[round(float(f), 4), *(round(float(p[i]), 6) for p in profiles.values())]
            for i, f in enumerate(exp.frequencies_hz)]  # fmt: skip
    write_tsv(out / "bands.tsv", columns, rows)
    return {**info, "classes": counts, "method": method, "explanation": exp}


__all__ = [
    "EXPLANATION_COLUMNS", "explain_run_dir", "explain_source", "explain_to_dir", "is_run_dir",
]  # fmt: skip
