"""Sizes: the table of text/data/bss per target (and the change against a baseline), as
rows for the terminal, JSON, and Markdown for a CI comment."""

from __future__ import annotations

from mpforge.firmware.size import SECTIONS, SizeRow, regions_note


def _fmt_delta(value: int | None) -> str:
    if value is None:
        return ""
    return f"{value:+d}" if value else "0"


def table_rows(rows: list[SizeRow], with_baseline: bool) -> list[tuple[str, ...]]:
    out = []
    for row in rows:
        cells = [row.target]
        for section in SECTIONS:
            cells.append(str(row.size.get(section, "")))
            if with_baseline:
                cells.append("new" if row.base is None else _fmt_delta(row.delta(section)))
        cells.append(regions_note(row.size))
        out.append(tuple(cells))
    return out


def columns(with_baseline: bool) -> list[str]:
    cols = ["target"]
    for section in SECTIONS:
        cols += [section, f"Δ{section}"] if with_baseline else [section]
    return cols + ["regions"]


def to_json(rows: list[SizeRow]) -> dict:
    return {"targets": {r.target: r.size for r in rows},
            "delta": {r.target: {s: r.delta(s) for s in SECTIONS}
                      for r in rows if r.base is not None}}


def to_markdown(rows: list[SizeRow], with_baseline: bool) -> str:
    cols = columns(with_baseline)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(rows, with_baseline)]
    return "\n".join(lines) + "\n"
