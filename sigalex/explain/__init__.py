"""Explanations in Hz × seconds: which parts of a window's time-frequency map a model's
decision rests on (``sigalex explain``, :meth:`sigalex.Predictor.explain`).

Captum (the ``explain`` extra) is imported only when an attribution is computed. This package
stands beside :mod:`sigalex.inference`: it uses the predictor, and neither inference nor
training imports it.
"""

from __future__ import annotations

from .attribution import METHODS, Explanation, concatenate, explain_windows, import_captum

__all__ = ["METHODS", "Explanation", "concatenate", "explain_windows", "import_captum"]
