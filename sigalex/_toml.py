"""Writing TOML (Python reads it with :mod:`tomllib` but has no writer): the recipes sigalex
saves (``config.toml`` of a run, ``best.toml`` of a study) are tables of plain values."""

from __future__ import annotations

from collections.abc import Mapping

from .errors import SigalexError


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    if value is None:
        raise SigalexError("TOML has no null")
    raise SigalexError(f"cannot write {value!r} as TOML")


def toml_key(key: str) -> str:
    return key if key and all(c.isalnum() or c in "_-" for c in key) else toml_value(key)


def dumps_tables(tables: Mapping[str, Mapping]) -> str:
    """``{section: {key: value}}`` as TOML text, one ``[section]`` each (``None`` values left
    out: TOML has no null)."""
    lines = []
    for section, table in tables.items():
        lines.append(f"[{section}]")
        for key, value in table.items():
            if value is None:
                continue
            lines.append(f"{toml_key(key)} = {toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


__all__ = ["dumps_tables", "toml_key", "toml_value"]
