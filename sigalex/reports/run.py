"""``report.html`` of a run directory: the recipe, data and split, metrics (mean ± sd over
folds), training curves, confusion matrices, ROC, example images, weights, device and time.

Built from the files ``sigalex run`` leaves (``config.toml``, ``metrics.json``, each fold's
``history.csv`` and ``plots/``), so it can be rebuilt for any finished run:
``sigalex.reports.run_report(run_dir)``.

Explanations (saliency maps and the like) have their place: every PNG in an
``explanations/`` folder of the run or of a fold (:data:`EXPLANATIONS_DIR`), or given as
``explanations=[(caption, path), ...]``, is shown in the report's "Explanations" section.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .._files import fold_dirs
from ..errors import DataError
from .common import file_uri, fmt_number, number, read_tsv, render, write_report

EXPLANATIONS_DIR = "explanations"
"""The folder (in a run directory or a fold's) whose PNGs the report shows as explanations:
the hook for ``sigalex explain`` and any other tool that explains a model's decisions."""

METRICS = (
    ("accuracy", "accuracy"),
    ("balanced_accuracy", "balanced accuracy"),
    ("f1_macro", "macro F1"),
    ("auroc", "AUROC"),
    ("sensitivity", "sensitivity"),
    ("specificity", "specificity"),
    ("loss", "loss"),
)
"""The headline metrics, in the report's order: (key in ``metrics.json``, label)."""
PLOTS = (
    ("training", "Training curves"),
    ("confusion", "Confusion matrix"),
    ("confusion_per_recording", "Confusion matrix per recording"),
    ("roc", "ROC curves"),
    ("examples", "Example test images per class (green: predicted right, red: wrong)"),
)


def _history(folder: Path) -> list[dict]:
    return [{k: number(v) for k, v in row.items()} for row in _read_csv(folder / "history.csv")]


def _read_csv(path: Path) -> list[dict[str, str]]:
    """``history.csv`` rows (comma-separated; ``[]`` when missing)."""
    if not path.is_file():
        return []
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line]
    if not lines:
        return []
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]


def _curves_uri(folder: Path, history: list[dict], best_epoch) -> str | None:
    """The fold's ``plots/training.png``, or curves drawn from its history (a run that left
    the test set alone has no plots)."""
    uri = file_uri(folder / "plots" / "training.png")
    if uri is not None or not history:
        return uri
    from .. import plots

    with tempfile.TemporaryDirectory() as tmp:
        path = plots.plot_history(history, Path(tmp) / "training.png", best_epoch=best_epoch)
        return file_uri(path)


def _metric_rows(metrics: dict, folds: list[dict]) -> list[dict]:
    """One row per headline metric: its value, or mean ± sd and each fold's value."""
    rows = []
    for key, label in METRICS:
        value = metrics.get(key)
        if isinstance(value, dict):  # summarised over folds
            if value.get("mean") is None:
                continue
            text = f"{value['mean']:.3f} ± {value.get('std') or 0.0:.3f}"
            per_fold = [fmt_number(f.get(key)) for f in folds]
        elif number(value) is not None:
            text, per_fold = fmt_number(value), []
        else:
            continue
        rows.append({"key": key, "label": label, "value": text, "folds": per_fold})
    return rows


def _per_class_rows(metrics: dict) -> list[dict]:
    rows = []
    for name, scores in (metrics.get("per_class") or {}).items():
        if not isinstance(scores, dict):
            continue
        cell = {}
        for k in ("precision", "recall", "f1", "support"):
            v = scores.get(k)
            if isinstance(v, dict):  # summarised over folds
                cell[k] = (
                    f"{v['mean']:.3f} ± {v.get('std') or 0.0:.3f}"
                    if v.get("mean") is not None
                    else "—"
                )
            else:
                cell[k] = fmt_number(v)
        rows.append({"name": name, **cell})
    return rows


def _split_table(counts: dict | None) -> dict | None:
    """``split_counts`` as a table: rows train/val/test, columns the classes."""
    if not counts:
        return None
    classes = list(counts.get("classes") or [])
    rows = []
    for part in ("train", "val", "test"):
        p = counts.get(part) or {}
        windows = p.get("windows") or {}
        rows.append(
            {
                "part": part,
                "counts": [windows.get(c, 0) for c in classes],
                "total": p.get("n_windows", 0),
                "groups": p.get("n_groups", 0),
            }
        )
    return {"classes": classes, "rows": rows, "group_by": counts.get("group_by", "group")}


def _explanations(run_dir: Path, folders: list[Path], given) -> list[dict]:
    found: list[tuple[str, Path]] = []
    for folder in dict.fromkeys([run_dir, *folders]):
        for png in sorted((folder / EXPLANATIONS_DIR).glob("*.png")):
            where = "" if folder == run_dir else f"{folder.name}: "
            found.append((where + png.stem.replace("_", " "), png))
    found += [(str(caption), Path(path)) for caption, path in given or ()]
    return [{"caption": c, "uri": uri} for c, p in found if (uri := file_uri(p)) is not None]


def run_report(run_dir, *, explanations: Sequence[tuple[str, object]] | None = None) -> Path:
    """Write ``report.html`` into a finished run directory; returns its path.

    Parameters
    ----------
    run_dir : path
        A run directory of ``sigalex run`` (``config.toml`` and ``metrics.json``).
    explanations : list of (str, path), optional
        Further PNGs (caption, file) for the "Explanations" section, besides those found in
        ``explanations/`` folders of the run and its folds.

    Raises
    ------
    DataError
        Not a finished run directory (no ``metrics.json`` or ``config.toml``).
    """
    run_dir = Path(run_dir)
    for name in ("config.toml", "metrics.json"):
        if not (run_dir / name).is_file():
            raise DataError(f"{run_dir}: not a finished run directory (no {name})")
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    fold_metrics = metrics.get("folds") or [metrics]
    folders = fold_dirs(run_dir)
    folds = []
    for k, folder in enumerate(folders):
        m = fold_metrics[k] if k < len(fold_metrics) else {}
        history = _history(folder)
        figures = {key: file_uri(folder / "plots" / f"{key}.png") for key, _ in PLOTS}
        figures["training"] = _curves_uri(folder, history, m.get("best_epoch"))
        folds.append(
            {
                "name": folder.name if folder != run_dir else "",
                "metrics": m,
                "split": m.get("split", ""),
                "split_table": _split_table(m.get("split_counts")),
                "per_class": _per_class_rows(m),
                "figures": [
                    {"title": title, "uri": figures[key], "wide": key == "training"}
                    for key, title in PLOTS
                    if figures[key]
                ],
                "epochs": m.get("epochs"),
                "best_epoch": m.get("best_epoch"),
            }
        )
    facts = [
        ("dataset", metrics.get("dataset")),
        ("dataset root", metrics.get("dataset_root")),
        ("transform", metrics.get("transform")),
        ("positive class", metrics.get("positive_class")),
        ("windows", metrics.get("n_windows")),
        ("weights used", metrics.get("weights_used")),
        ("parent checkpoint", metrics.get("parent")),
        ("device", metrics.get("device")),
        ("processes", metrics.get("world_size")),
        ("seconds", metrics.get("seconds")),
        ("sigalex", metrics.get("sigalex_version")),
        ("torch", metrics.get("torch_version")),
    ]
    html = render(
        "run.html.j2",
        title=f"sigalex run {run_dir.name}",
        run_dir=str(run_dir),
        config_text=(run_dir / "config.toml").read_text(encoding="utf-8"),
        split=metrics.get("split", ""),
        n_folds=len(metrics.get("folds") or []),
        test_note=metrics.get("test") if isinstance(metrics.get("test"), str) else None,
        metric_rows=_metric_rows(metrics, metrics.get("folds") or []),
        per_class=_per_class_rows(metrics),
        folds=folds,
        facts=[(k, v) for k, v in facts if v not in (None, "")],
        notes=list(metrics.get("data_notes") or []),
        data_errors=read_tsv(run_dir / "data_errors.tsv"),
        explanations=_explanations(run_dir, folders, explanations),
        explanations_dir=EXPLANATIONS_DIR,
    )
    return write_report(run_dir, html)


__all__ = ["EXPLANATIONS_DIR", "METRICS", "PLOTS", "run_report"]
