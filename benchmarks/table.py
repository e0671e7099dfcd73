"""The table ``benchmarks/all.py`` prints: metric | gofer | floor | ratio | target, by section."""

from __future__ import annotations

import dataclasses

from rmi import _HIGHER, _LOWER, _figure, _ratio

LOWER, HIGHER = _LOWER, _HIGHER
HEADER = ("metric", "gofer", "floor", "ratio", "target")

Value = float | int | str | None


@dataclasses.dataclass(frozen=True)
class Row:
    """One figure of gofer, beside the floor measured in the same run (when there is one).

    ``floor`` is None where no floor exists. The ratio is gofer/floor
    (``1.50x``) when lower is better and a share (``60 %``) when higher is;
    ``target`` is the issue's target, printed as written.
    """

    metric: str
    gofer: Value
    floor: Value = None
    better: str = LOWER
    target: str = ""


@dataclasses.dataclass
class Section:
    """Rows under one title, with notes printed below the table."""

    title: str
    rows: list[Row] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)


def failed(what: str, error: BaseException | str) -> tuple[Row, str]:
    """A row saying that ``what`` could not be measured, and a note saying why."""
    lines = str(error).strip().splitlines() or [repr(error)]
    return Row(what, "failed"), f"{what} failed: {lines[0][:200]}"


def _cell(value: Value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    return _figure(value)


def _row_cells(row: Row) -> tuple[str, ...]:
    if row.floor is None:
        floor = ratio = "-"
    else:
        floor, ratio = _cell(row.floor), "n/a"
        if isinstance(row.gofer, (int, float)) and isinstance(row.floor, (int, float)):
            ratio = _ratio(float(row.gofer), float(row.floor), row.better)
    return (row.metric, _cell(row.gofer), floor, ratio, row.target or "-")


def render(sections: list[Section]) -> str:
    """The table of every section (its title as a line of its own), then the notes."""
    body = [(section, [_row_cells(row) for row in section.rows]) for section in sections]
    cells = [HEADER, *(cell for _, rows in body for cell in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADER))]
    rule = "-+-".join("-" * w for w in widths)

    def line(row: tuple[str, ...]) -> str:
        numbers = [cell.rjust(w) for cell, w in zip(row[1:4], widths[1:4])]
        return " | ".join([row[0].ljust(widths[0]), *numbers, row[4]]).rstrip()

    lines = [line(HEADER), rule]
    for section, rows in body:
        lines.append(f"== {section.title}")
        lines.extend(line(row) for row in rows)
    notes = [note for section, _ in body for note in section.notes]
    if notes:
        lines.append("")
        lines.extend(f"* {note}" for note in notes)
    return "\n".join(lines)
