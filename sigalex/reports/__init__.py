"""Self-contained HTML reports: ``report.html`` of a run directory (:func:`run_report`) and
of a ``sigalex predict`` output folder (:func:`predict_report`).

Each report is one file with its figures embedded (PNG data URIs) and no external resource,
so it opens from a disk, an e-mail or an archive without a network. The pages are Jinja2
templates shipped with the package (``sigalex/reports/templates``); figures are matplotlib's.
Training and prediction call into this package only at their ends, and import it lazily.
"""

from __future__ import annotations

from .predict import MAX_PLOTTED, predict_report
from .run import EXPLANATIONS_DIR, run_report

__all__ = ["EXPLANATIONS_DIR", "MAX_PLOTTED", "predict_report", "run_report"]
