"""What both reports share: the Jinja2 environment, figures as data URIs, small readers."""

from __future__ import annotations

import base64
import csv
import io
import math
from datetime import UTC, datetime
from pathlib import Path

import jinja2

from .._files import atomic_write_text
from .._version import __version__

TEMPLATES = Path(__file__).parent / "templates"
"""The templates (package data): ``base.html.j2``, ``run.html.j2``, ``predict.html.j2``."""
REPORT_NAME = "report.html"


def environment() -> jinja2.Environment:
    """The templates' environment: HTML autoescaped, undefined names an error."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = fmt_number
    return env


def render(template: str, **context) -> str:
    """A template rendered with ``context`` (plus ``sigalex_version`` and ``generated``)."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        environment()
        .get_template(template)
        .render(sigalex_version=__version__, generated=now, **context)
    )


def write_report(folder: Path, html: str) -> Path:
    """``folder/report.html``, written atomically."""
    path = Path(folder) / REPORT_NAME
    atomic_write_text(path, html)
    return path


def png_uri(data: bytes) -> str:
    """PNG bytes as a ``data:`` URI."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def file_uri(path: Path) -> str | None:
    """A PNG file as a ``data:`` URI, or ``None`` when there is no such file."""
    path = Path(path)
    return png_uri(path.read_bytes()) if path.is_file() else None


def figure_uri(fig) -> str:
    """A matplotlib :class:`~matplotlib.figure.Figure` as a PNG ``data:`` URI."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return png_uri(buf.getvalue())


def new_figure(width: float, height: float):
    """A figure on the Agg canvas (no pyplot: nothing registered, no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


MISSING = "n/a"
"""How the tables write a missing value (:func:`sigalex._files.tsv_cell`)."""


def read_tsv(path: Path) -> list[dict[str, str]]:
    """Rows of a TSV with a header as dicts, ``n/a`` read as ``""`` (``[]`` when the file is
    missing)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh, delimiter="\t")
        header = next(rows, None)
        if header is None:
            return []
        return [
            {k: "" if v == MISSING else v for k, v in zip(header, r, strict=False)}
            for r in rows
            if r
        ]


def number(text) -> float | None:
    """A table cell as a float (``None`` for empty, ``n/a`` or not a number)."""
    if text is None:
        return None
    if isinstance(text, int | float):
        return None if isinstance(text, bool) else float(text)
    try:
        value = float(str(text))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def fmt_number(value, digits: int = 3) -> str:
    """A number for a table (``—`` for none; integers without decimals)."""
    v = number(value)
    if v is None:
        return "—" if value in (None, "") else str(value)
    if v.is_integer() and abs(v) < 1e15 and not isinstance(value, float):
        return str(int(v))
    return f"{v:.{digits}f}"


__all__ = [
    "MISSING",
    "REPORT_NAME",
    "TEMPLATES",
    "environment",
    "figure_uri",
    "file_uri",
    "fmt_number",
    "new_figure",
    "number",
    "png_uri",
    "read_tsv",
    "render",
    "write_report",
]
