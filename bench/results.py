"""Figures, their verdicts, and the table they print as."""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    """One measured value. `target` reads like "<= 0.85" or ">= 1" and is checked against
    `ratio` when the target is a ratio (`target_on="ratio"`), else against `value`."""

    part: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    ratio: float | None = None
    target: str | None = None
    target_on: str = "value"
    met: bool | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.ratio is None and self.baseline not in (None, 0) and self.value is not None:
            self.ratio = self.value / self.baseline
        if self.target and self.met is None:
            self.met = check(self.ratio if self.target_on == "ratio" else self.value, self.target)

    def to_json(self) -> dict[str, Any]:
        data = {k: _round(v) for k, v in asdict(self).items()}
        return {k: data[k] for k in ("name", "value", "unit", "baseline", "ratio", "target", "met", "part", "target_on", "note")}


def check(value: float | None, target: str) -> bool | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    op, _, bound = target.partition(" ")
    limit = float(bound)
    return {"<=": value <= limit, ">=": value >= limit, "<": value < limit, ">": value > limit, "==": value == limit}[op]


def _round(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return value  # nothing measured (NaN): written as such, not a crash
    if isinstance(value, float):
        return float(f"{value:.4g}") if abs(value) < 1e6 else round(value)
    return value


def write_json(path: Path, figures: Iterable[Figure], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "figures": [f.to_json() for f in figures]}, indent=2) + "\n")


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return str(value)


def table(figures: Iterable[Figure], markdown: bool = False) -> str:
    header = ["part", "figure", "value", "unit", "baseline", "ratio", "target", "met"]
    rows = [[f.part, f.name, fmt(f.value), f.unit, fmt(f.baseline), fmt(f.ratio),
             (f"{'ratio' if f.target_on == 'ratio' else 'value'} {f.target}" if f.target else ""),
             {True: "yes", False: "NO", None: ""}[f.met]] for f in figures]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])
