"""The model tables of docs/PROVIDERS.md and README.md, generated from the catalog
(functions/veorelay/catalog/*.toml), so the documents cannot drift from what the code checks.

    PYTHONPATH=functions:. .venv/bin/python -m dev.catalog_doc          # rewrite both tables
    PYTHONPATH=functions:. .venv/bin/python -m dev.catalog_doc --check  # exit 1 if either is stale

tests/unit/test_catalog_doc.py fails when a table is stale; `UPDATE_CATALOG_DOC=1` makes it
rewrite them. Only the text between the markers is generated; the rest is written by hand.
"""
from __future__ import annotations

import sys
from pathlib import Path

from veorelay.config import PROVIDER_NAMES, shipped_catalog
from veorelay.core.catalog import Catalog, ModelSpec, ProviderCatalog

REPO = Path(__file__).resolve().parents[1]
PROVIDERS_DOC = REPO / "docs" / "PROVIDERS.md"
README = REPO / "README.md"
BEGIN, END = "<!-- catalog:begin -->", "<!-- catalog:end -->"
README_BEGIN, README_END = "<!-- catalog:providers:begin -->", "<!-- catalog:providers:end -->"


def _seconds(durations: tuple[int, ...]) -> str:
    return "/".join(map(str, durations)) + " s"


def _shapes(spec: ModelSpec) -> str:
    """Resolutions with the durations each allows: `720p 4/6/8 s · 1080p 8 s`."""
    return " · ".join(f"{res} {_seconds(durations)}" for res, durations in spec.resolutions.items())


def _images(spec: ModelSpec) -> str:
    parts = [name for name, has in (("first", spec.first_frame), ("last", spec.last_frame)) if has]
    text = " + ".join(parts) + " frame" if parts else "—"
    if spec.max_reference_images:
        refs = f"≤ {spec.max_reference_images} refs ({_seconds(spec.reference_durations)}"
        if spec.reference_aspect_ratios and spec.reference_aspect_ratios != spec.aspect_ratios:
            refs += ", " + "/".join(spec.reference_aspect_ratios)
        text = (text + "; " if parts else "") + refs + ")"
    if spec.requires:
        text += "; needs " + ", ".join(spec.requires)
    return text


def _extension(spec: ModelSpec) -> str:
    ext = spec.extension
    if ext is None:
        return "—"
    age = f", source ≤ {ext.max_source_age_hours} h old" if ext.max_source_age_hours else ""
    return f"+{ext.added_seconds} s, input ≤ {ext.max_input_seconds} s {'/'.join(ext.input_resolutions)}{age}"


def _price(spec: ModelSpec) -> str:
    if not spec.price_per_second:
        return "—"
    text = " · ".join(f"{res} ${usd:.2f}" for res, usd in spec.price_per_second.items())
    if spec.price_per_second_silent:
        text += " (silent " + " · ".join(f"{res} ${usd:.2f}" for res, usd in spec.price_per_second_silent.items()) + ")"
    return text


def _status(spec: ModelSpec, default: str) -> str:
    if spec.retired:
        when = spec.retired_on.isoformat() if spec.retired_on else "?"
        return f"retired {when} → `{spec.replacement}`"
    return spec.status + (" (default)" if spec.id == default else "")


def provider_table(provider: ProviderCatalog) -> str:
    rows = [f"### `{provider.provider}`", "",
            "| model | status | tier | resolutions and durations | aspect | audio | images | extension | videos | list USD / s |",
            "|---|---|---|---|---|---|---|---|---:|---|"]
    for spec in provider.models:
        rows.append(f"| `{spec.id}` | {_status(spec, provider.default_model)} | {spec.tier} | {_shapes(spec)} | "
                    f"{'/'.join(spec.aspect_ratios)} | {spec.audio} | {_images(spec)} | {_extension(spec)} | "
                    f"{spec.max_samples} | {_price(spec)} |")
    for note in provider.notes:
        rows.append(f"\n{note[0].upper()}{note[1:]}.")
    return "\n".join(rows)


def providers_doc_body(catalog: Catalog) -> str:
    """Everything between the markers of docs/PROVIDERS.md."""
    parts = [provider_table(catalog.provider(name)) for name in PROVIDER_NAMES]
    return "\n" + "\n\n".join(parts) + "\n"


def readme_body(catalog: Catalog) -> str:
    """Everything between the markers of README.md's "## Providers": one line per provider."""
    rows = ["| provider | default model | other models | retired (refused, with their replacement) | list USD / s |",
            "|---|---|---|---|---|"]
    for name in PROVIDER_NAMES:
        provider = catalog.provider(name)
        others = [f"`{m.id}`" + (" (preview)" if m.status == "preview" else "")
                  for m in provider.models if not m.retired and m.id != provider.default_model]
        retired = [f"`{m.id}` → `{m.replacement}`" for m in provider.models if m.retired]
        prices = [usd for m in provider.models if not m.retired for usd in m.price_per_second.values()]
        price = f"${min(prices):.2f} to ${max(prices):.2f}" if prices else "not listed"
        default = provider.get(provider.default_model)
        status = f" ({default.status})" if default is not None and default.status != "ga" else ""
        rows.append(f"| `{name}` | `{provider.default_model}`{status} | {', '.join(others) or '—'} | "
                    f"{', '.join(retired) or '—'} | {price} |")
    return "\n" + "\n".join(rows) + "\n"


def replaced(text: str, begin: str, end: str, body: str, where: str) -> str:
    """`text` with what lies between `begin` and `end` replaced by `body`."""
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise ValueError(f"{where} must hold {begin} ... {end} exactly once")
    before, rest = text.split(begin, 1)
    _current, after = rest.split(end, 1)
    return before + begin + body + end + after


def targets(catalog: Catalog | None = None) -> list[tuple[Path, str]]:
    """Each generated document with the text it should have."""
    catalog = catalog or shipped_catalog()
    return [
        (PROVIDERS_DOC, replaced(PROVIDERS_DOC.read_text(encoding="utf-8"), BEGIN, END, providers_doc_body(catalog),
                                 "docs/PROVIDERS.md")),
        (README, replaced(README.read_text(encoding="utf-8"), README_BEGIN, README_END, readme_body(catalog), "README.md")),
    ]


def stale(catalog: Catalog | None = None) -> list[Path]:
    return [path for path, wanted in targets(catalog) if path.read_text(encoding="utf-8") != wanted]


def write(catalog: Catalog | None = None) -> list[Path]:
    """Rewrite the stale documents; return them."""
    changed = []
    for path, wanted in targets(catalog):
        if path.read_text(encoding="utf-8") != wanted:
            path.write_text(wanted, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv: list[str]) -> int:
    if "--check" in argv:
        found = stale()
        for path in found:
            print(f"{path.relative_to(REPO)} is stale: run python -m dev.catalog_doc", file=sys.stderr)
        return 1 if found else 0
    for path in write():
        print(f"rewrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
