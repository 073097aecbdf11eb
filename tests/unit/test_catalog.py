"""The model catalog as data: the shipped files load and say what Google documents today, a bad
document is an error naming its file and key, overrides replace or add models, and list
prices are computed from it."""
from __future__ import annotations

import copy
import fnmatch
import re
import tomllib
from datetime import date

import pytest

from veorelay.config import CATALOG_DIR, PROVIDER_NAMES, shipped_catalog
from veorelay.core.catalog import CatalogError, list_price_usd, merge_catalog, parse_provider


def model(**fields):
    """A valid model table (as tomllib gives it), changed by `fields` (None removes a key)."""
    base = {"id": "veo-x", "status": "ga", "tier": "standard", "durations": [4, 6, 8],
            "resolutions": {"720p": [4, 6, 8], "1080p": [8]}, "aspect_ratios": ["16:9", "9:16"], "audio": "optional",
            "first_frame": True, "last_frame": True, "max_samples": 4,
            "price_per_second": {"720p": 0.4, "1080p": 0.4}, "price_per_second_silent": {"720p": 0.2}}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def doc(*models, default="veo-x"):
    return {"default_model": default, "models": list(models) or [model()]}


def error_of(document) -> str:
    with pytest.raises(CatalogError) as caught:
        parse_provider("p.toml", "p", document)
    return str(caught.value)


# ------------------------------------------------------------------------------ the shipped files
def test_every_provider_has_a_shipped_file_inside_the_deployed_folder():
    """functions/ is what infra/storage.tf zips and deploys; none of its excludes drops a catalog file."""
    assert CATALOG_DIR.parts[-3:] == ("functions", "veorelay", "catalog")
    assert sorted(p.stem for p in CATALOG_DIR.glob("*.toml")) == sorted(PROVIDER_NAMES)
    assert set(shipped_catalog().providers) == set(PROVIDER_NAMES)
    storage_tf = (CATALOG_DIR.parents[2] / "infra" / "storage.tf").read_text(encoding="utf-8")
    archive = storage_tf[storage_tf.index('data "archive_file" "functions"'):]
    archive = archive[:archive.index("\n}")]
    assert 'source_dir       = "${path.module}/../functions"' in archive
    excludes = re.findall(r'"([^"]+)"', archive[archive.index("excludes"):])
    for path in CATALOG_DIR.glob("*.toml"):
        shipped = path.relative_to(CATALOG_DIR.parents[1]).as_posix()  # veorelay/catalog/<provider>.toml
        assert not [pattern for pattern in excludes if fnmatch.fnmatch(shipped, pattern)], (shipped, excludes)


@pytest.mark.parametrize("provider,default", [
    ("gemini", "veo-3.1-generate-preview"), ("litellm-gemini", "veo-3.1-generate-preview"),
    ("vertex", "veo-3.1-generate-001"), ("newapi", "veo-3.1-fast-generate-preview"),
    ("flow", "veo_3_1_t2v_fast"), ("genaipro", "auto"),
])
def test_defaults_are_current_models(provider, default):
    catalog = shipped_catalog().provider(provider)
    assert catalog.default_model == default
    assert not catalog.get(default).retired
    assert catalog.offered[0] == default and all(not catalog.get(m).retired for m in catalog.offered)


@pytest.mark.parametrize("provider,retired,replacement", [
    ("vertex", "veo-3.0-generate-001", "veo-3.1-generate-001"),
    ("vertex", "veo-3.0-fast-generate-001", "veo-3.1-fast-generate-001"),
    ("vertex", "veo-2.0-generate-001", "veo-3.1-generate-001"),
    ("vertex", "veo-3.1-generate-preview", "veo-3.1-generate-001"),
    ("gemini", "veo-3.0-generate-001", "veo-3.1-generate-preview"),
    ("litellm-gemini", "veo-3.0-generate-preview", "veo-3.1-generate-preview"),  # the model seed document 000 names
    ("newapi", "veo-3.0-fast-generate-001", "veo-3.1-fast-generate-preview"),  # seed document 001's example model
])
def test_retired_models_carry_their_date_and_replacement(provider, retired, replacement):
    spec = shipped_catalog().provider(provider).get(retired)
    assert spec.status == "retired" and spec.replacement == replacement and spec.retired_on is not None
    assert spec.retired_on <= date(2026, 6, 30)


def test_vertex_has_the_ga_and_lite_models_as_documented():
    vertex = shipped_catalog().provider("vertex")
    assert [m.id for m in vertex.models if not m.retired] == ["veo-3.1-generate-001", "veo-3.1-fast-generate-001",
                                                              "veo-3.1-lite-generate-001"]
    assert (vertex.get("veo-3.1-generate-001").status, vertex.get("veo-3.1-lite-generate-001").status) == ("ga", "preview")
    standard = vertex.get("veo-3.1-generate-001")
    assert standard.resolutions["1080p"] == (8,) and standard.resolutions["4k"] == (8,)
    assert standard.reference_durations == (8,) and standard.reference_aspect_ratios == ("16:9",)
    assert standard.extension.added_seconds == 7 and standard.extension.max_source_age_hours is None


def test_gemini_extension_rules_and_lite_limits():
    gemini = shipped_catalog().provider("gemini")
    ext = gemini.get("veo-3.1-generate-preview").extension
    assert (ext.added_seconds, ext.max_input_seconds, ext.input_resolutions, ext.max_source_age_hours) == (7, 141, ("720p",), 48)
    lite = gemini.get("veo-3.1-lite-generate-preview")
    assert "4k" not in lite.resolutions and lite.max_reference_images == 0 and lite.extension is None
    assert (lite.tier, lite.price_per_second["720p"]) == ("lite", 0.05)


def test_prices_differ_by_tier_and_resolution():
    gemini = shipped_catalog().provider("gemini")
    price = {m.id: dict(m.price_per_second) for m in gemini.models if not m.retired}
    assert price["veo-3.1-generate-preview"]["4k"] > price["veo-3.1-generate-preview"]["720p"]
    assert price["veo-3.1-generate-preview"]["720p"] > price["veo-3.1-fast-generate-preview"]["720p"] > price["veo-3.1-lite-generate-preview"]["720p"]


# ------------------------------------------------------------------------------ list_price_usd
def test_list_price_is_seconds_times_samples_times_the_price_at_that_resolution():
    spec = parse_provider("p.toml", "p", doc()).get("veo-x")
    assert list_price_usd(spec, "1080p", 8, 2, audio=True) == pytest.approx(6.4)
    assert list_price_usd(spec, "720p", 4, 1, audio=False) == pytest.approx(0.8)  # the silent price
    assert list_price_usd(spec, "1080p", 8, 1, audio=False) == pytest.approx(3.2)  # no silent price listed at 1080p
    assert list_price_usd(spec, None, None, None) == pytest.approx(3.2)  # defaults: 720p, 8 s, one video


def test_list_price_is_none_where_the_catalog_lists_none():
    spec = parse_provider("p.toml", "p", doc(model(price_per_second={"720p": 0.4}))).get("veo-x")
    assert list_price_usd(spec, "1080p", 8, 1) is None
    assert list_price_usd(shipped_catalog().provider("newapi").get("veo-3.1-generate-preview"), "720p", 8, 1) is None


def test_shipped_list_prices_of_a_default_job():
    vertex = shipped_catalog().provider("vertex")
    assert list_price_usd(vertex.get("veo-3.1-generate-001"), "4k", 8, 1) == pytest.approx(4.8)
    assert list_price_usd(vertex.get("veo-3.1-lite-generate-001"), "720p", 4, 1, audio=False) == pytest.approx(0.12)


# ------------------------------------------------------------------------------ bad documents
@pytest.mark.parametrize("document,words", [
    (doc(model(colour="red")), "p.toml: models[0] (veo-x).colour: unknown key"),
    ({**doc(), "extra": 1}, "p.toml: extra: unknown key"),
    (doc(model(status="beta")), "models[0] (veo-x).status: must be one of ga, preview, retired"),
    (doc(model(price_per_second={"720p": -0.1})), "models[0] (veo-x).price_per_second.720p: must not be negative"),
    (doc(model(price_per_second={"4k": 0.6})), "price_per_second.4k: is not one of the model's resolutions"),
    (doc(model(resolutions={"8k": [8]})), "resolutions.8k: unknown resolution"),
    (doc(model(resolutions={"720p": [4, 10]})), "resolutions.720p[1]: 10 is not one of the model's durations"),
    (doc(model(aspect_ratios=["4:3"])), "aspect_ratios[0]: must be one of 16:9, 9:16"),
    (doc(model(durations=[])), "durations: must be a non-empty list"),
    (doc(model(max_samples=5)), "max_samples: must be a whole number 1..4"),
    (doc(model(max_reference_images=4)), "max_reference_images: must be a whole number 0..3"),
    (doc(model(first_frame="yes")), "first_frame: must be true or false"),
    (doc(model(audio="always")), 'price_per_second_silent: is only for a model whose audio is "optional"'),
    (doc(model(id="old", status="retired", replacement="veo-x")), "models[0] (old).retired_on: is required for a retired model"),
    (doc(model(extension={"added_seconds": 7})), "extension.max_input_seconds: is required"),
    (doc(model(durations=None)), "models[0] (veo-x).durations: is required"),
    (doc(model(), model()), "models[1]: model 'veo-x' is listed twice"),
    (doc(default="veo-y"), "p.toml: default_model: names 'veo-y', which this provider does not have"),
    (doc(model(), model(id="old", status="retired", retired_on=date(2026, 6, 30), replacement="veo-gone")),
     "models[1] (old).replacement: names 'veo-gone', which this provider does not have"),
    (doc(model(), model(id="old", status="retired", retired_on=date(2026, 6, 30), replacement="veo-x"), default="old"),
     "default_model: names 'old', which is retired (use 'veo-x')"),
])
def test_a_bad_document_names_the_file_and_the_key(document, words):
    assert words in error_of(document)


def test_a_replacement_must_itself_run():
    retired = {"status": "retired", "retired_on": date(2026, 6, 30)}
    document = doc(model(), model(id="a", replacement="b", **retired), model(id="b", replacement="veo-x", **retired))
    assert "models[1] (a).replacement: names 'b', which is retired too" in error_of(document)


# ------------------------------------------------------------------------------ overrides
def shipped_document(provider: str) -> dict:
    with (CATALOG_DIR / f"{provider}.toml").open("rb") as f:
        return tomllib.load(f)


def test_an_override_replaces_a_model_adds_one_and_changes_the_default():
    base = shipped_catalog()
    lite = copy.deepcopy(next(m for m in shipped_document("vertex")["models"] if m["id"] == "veo-3.1-lite-generate-001"))
    lite.update(status="ga", price_per_second={"720p": 0.04, "1080p": 0.07})
    extra = model(id="veo-4-preview", status="preview", tier="standard")
    merged = merge_catalog(base, "override.toml", {"vertex": {"default_model": "veo-3.1-lite-generate-001",
                                                              "models": [lite, extra]}})
    vertex = merged.provider("vertex")
    assert vertex.default_model == "veo-3.1-lite-generate-001"
    assert vertex.get("veo-3.1-lite-generate-001").status == "ga" and vertex.get("veo-3.1-lite-generate-001").price_per_second["720p"] == 0.04
    assert vertex.models[-1].id == "veo-4-preview" and len(vertex.models) == len(base.provider("vertex").models) + 1
    assert merged.provider("gemini") is base.provider("gemini")  # other providers untouched
    assert base.provider("vertex").default_model == "veo-3.1-generate-001"  # the shipped catalog is not changed


@pytest.mark.parametrize("document,words", [
    ({"sora": {}}, "override.toml: sora: unknown provider"),
    ({"vertex": {"default_model": "veo-3.0-generate-001"}},
     "override.toml: vertex.default_model: names 'veo-3.0-generate-001', which is retired"),
    ({"vertex": {"models": [model(price_per_second={"720p": -1})]}}, "override.toml: vertex.models[0] (veo-x).price_per_second.720p"),
    ({"vertex": {"model": []}}, "override.toml: vertex.model: unknown key"),
    ([1], "override.toml: must be a table"),
])
def test_a_bad_override_names_the_file_and_the_key(document, words):
    with pytest.raises(CatalogError) as caught:
        merge_catalog(shipped_catalog(), "override.toml", document)
    assert words in str(caught.value)
