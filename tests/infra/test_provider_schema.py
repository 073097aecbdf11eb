"""infra/*.tf checked against the real provider schemas, offline (tests/infra/schema_check.py).

The schemas come from the npm packages pinned in infra/provider-schemas.txt (the CDK for Terraform
bindings generated from each provider version), fetched and derived once by `make setup`
(dev/tf_schema.py) into .cache/tf-schema/. Without them the tests fail and say how to get them:
they never skip. The planted cases show that each kind of mistake is caught, with its message, and
that valid constructs are not reported."""

from __future__ import annotations

import re
import shutil
import textwrap

import pytest
import schema_check
from infra_helpers import CLOUDBUILD, INFRA, REPO, load_hcl, load_yaml

from dev import tf_schema


@pytest.fixture(scope="session")
def schemas():
    try:
        return tf_schema.load()
    except tf_schema.SchemaError as exc:
        pytest.fail(f"provider schemas unavailable: {exc}\nRun `make tf-schema` (needs npm and the npm registry).", pytrace=False)


@pytest.fixture(scope="session")
def report(schemas):
    return schema_check.check(INFRA, schemas)


# ------------------------------------------------------------------------------ the real infra/
def test_infra_matches_the_provider_schemas(report):
    assert not report.findings, "infra/ does not match the provider schemas:\n" + "\n".join(map(str, report.findings))


# Required blocks given only by a `dynamic` block whose for_each the evaluator cannot know: each
# needs a reason here, or the check must learn to evaluate it.
UNVERIFIED_REQUIRED_BLOCKS: dict[str, str] = {}


def test_no_required_block_is_left_unverified(report):
    unverified = {f"{f.where}: {f.message}" for f in report.unverified}
    assert unverified == set(UNVERIFIED_REQUIRED_BLOCKS), "\n".join(sorted(unverified ^ set(UNVERIFIED_REQUIRED_BLOCKS)))


def test_every_resource_data_and_provider_block_is_checked(report):
    declared = set()
    for path in sorted(INFRA.glob("*.tf")):
        doc = load_hcl(path)
        for kind, prefix in (("resource", ""), ("data", "data.")):
            for block in doc.get(kind, []):
                declared |= {f"{prefix}{rtype}.{name}" for rtype, named in block.items() for name in named}
        declared |= {f"provider.{name}" for block in doc.get("provider", []) for name in block}
    assert declared, "no resource found in infra/"
    assert sorted(report.checked) == sorted(declared)


def test_pins_cover_every_provider_and_satisfy_versions_tf(report, schemas):
    required = {}
    for block in load_hcl(INFRA / "versions.tf")["terraform"]:
        for providers in block.get("required_providers", []):
            required.update(providers)
    pins = {pin.source: pin for pin in tf_schema.read_pins()}
    for name, spec in required.items():
        pin = pins.get(spec["source"])
        assert pin, f"{spec['source']} (versions.tf) has no schema pinned in infra/provider-schemas.txt"
        assert satisfies(pin.version, spec["version"]), f"{pin.package}@{pin.package_version} is {spec['source']} {pin.version}, outside versions.tf's {spec['version']!r}"
        assert pin.package == f"@cdktf/provider-{name}", pin
        assert schemas[pin.source]["version"] == pin.version
        assert schemas[pin.source]["package"] == f"{pin.package}@{pin.package_version}"
    assert set(pins) == {spec["source"] for spec in required.values()}, "a pin for a provider versions.tf does not require"


def version_tuple(text):
    return tuple(int(part) for part in text.split("."))


def satisfies(version, constraint):
    """Terraform version constraints: comma-separated =, !=, >, >=, <, <=, ~>."""
    v = version_tuple(version)
    for clause in constraint.split(","):
        op, want = re.fullmatch(r"\s*(~>|>=|<=|!=|=|>|<)?\s*([\d.]+)\s*", clause).groups()
        w = version_tuple(want)
        padded = w + (0,) * (len(v) - len(w))
        ok = {
            None: v == padded, "=": v == padded, "!=": v != padded, ">": v > padded, ">=": v >= padded, "<": v < padded, "<=": v <= padded,
            "~>": v >= padded and v[: len(w) - 1] == w[:-1],
        }[op]
        if not ok:
            return False
    return True


@pytest.mark.parametrize(
    "version, constraint, ok",
    [("6.50.0", "~> 6.30", True), ("7.0.0", "~> 6.30", False), ("6.29.9", "~> 6.30", False), ("2.7.1", "~> 2.7", True),
     ("0.13.1", "~> 0.13", True), ("6.30.5", "~> 6.30.0", True), ("6.31.0", "~> 6.30.0", False), ("1.5.0", ">= 1.2, < 2.0", True)],
)
def test_version_constraints(version, constraint, ok):
    assert satisfies(version, constraint) is ok


# ------------------------------------------------------------------------------ planted mistakes
HEADER = """
terraform {
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.30"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 6.30"
    }
  }
}
"""

# Valid and deliberately varied: for_each over a local, dynamic blocks with iterators, for
# expressions over resources, splats, count, data sources, depends_on, ignore_changes, google-beta,
# validation-guarded enum values. None of it may be reported.
CLEAN = HEADER + """
variable "ingress" {
  type    = string
  default = "ALLOW_INTERNAL_ONLY"
  validation {
    condition     = contains(["ALLOW_INTERNAL_ONLY", "ALLOW_ALL"], var.ingress)
    error_message = "ingress: ALLOW_INTERNAL_ONLY or ALLOW_ALL."
  }
}

locals {
  indexes = {
    by-status = { fields = [["status", "ASCENDING"], ["created_at", "DESCENDING"]] }
  }
  buckets = toset(["a", "b"])
}

data "google_project" "this" {}

resource "google_storage_bucket" "b" {
  for_each = local.buckets
  name     = "${data.google_project.this.number}-${each.key}"
  location = "US"

  versioning {
    enabled = true
  }

  dynamic "lifecycle_rule" {
    for_each = [7, 30]
    iterator = days
    content {
      condition {
        age = days.value
      }
      action {
        type = "Delete"
      }
    }
  }

  lifecycle {
    ignore_changes = [labels, versioning[0].enabled]
  }
}

resource "google_firestore_index" "i" {
  for_each   = local.indexes
  collection = "jobs"
  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = fields.value[0]
      order      = fields.value[1]
    }
  }
}

resource "google_project_service_identity" "vertex" {
  count    = 1
  provider = google-beta
  service  = "aiplatform.googleapis.com"
}

resource "google_cloudfunctions2_function" "f" {
  name     = "f"
  location = "us-central1"
  service_config {
    ingress_settings      = var.ingress
    service_account_email = google_project_service_identity.vertex[0].email
  }
  depends_on = [google_storage_bucket.b, data.google_project.this]
}

output "urls" {
  value = {
    buckets  = { for k, b in google_storage_bucket.b : k => b.url }
    fn       = google_cloudfunctions2_function.f.service_config[0].uri
    agents   = google_project_service_identity.vertex[*].member
    path     = path.module
    id_count = length(google_firestore_index.i)
  }
}
"""


def findings(tmp_path, schemas, text):
    (tmp_path / "main.tf").write_text(textwrap.dedent(text))
    return schema_check.check(tmp_path, schemas)


def test_a_valid_configuration_is_not_reported(tmp_path, schemas):
    result = findings(tmp_path, schemas, CLEAN)
    assert result.findings == [] and result.unverified == []
    assert sorted(result.checked) == sorted([
        "data.google_project.this", "google_storage_bucket.b", "google_firestore_index.i",
        "google_project_service_identity.vertex", "google_cloudfunctions2_function.f",
    ])


BUCKET = 'resource "google_storage_bucket" "b" {\n  name     = "b"\n  location = "US"\n%s\n}\n'
G = "hashicorp/google 6.50.0"

PLANTED = {
    "wrong-attribute": (
        BUCKET % '  colour = "blue"',
        [f'google_storage_bucket.b: {G} google_storage_bucket has no argument "colour"'],
    ),
    "wrong-nested-block": (
        BUCKET % "  soft_delete {\n    retention_duration_seconds = 0\n  }",
        [f'google_storage_bucket.b: {G} google_storage_bucket has no block "soft_delete" (did you mean "soft_delete_policy"?)'],
    ),
    "wrong-attribute-in-a-nested-block": (
        BUCKET % "  versioning {\n    enable = true\n  }",
        [f'google_storage_bucket.b: {G} google_storage_bucket has no argument "versioning.enable" (did you mean "enabled"?)',
         f'google_storage_bucket.b: required argument "versioning.enabled" is not set ({G} google_storage_bucket)'],
    ),
    "wrong-attribute-in-dynamic-content": (
        BUCKET % '  dynamic "cors" {\n    for_each = ["*"]\n    content {\n      origins = [cors.value]\n    }\n  }',
        [f'google_storage_bucket.b: {G} google_storage_bucket has no argument "cors.origins" (did you mean "origin"?)'],
    ),
    "missing-required-attribute": (
        'resource "google_storage_bucket" "b" {\n  name = "b"\n}\n',
        [f'google_storage_bucket.b: required argument "location" is not set ({G} google_storage_bucket)'],
    ),
    "missing-required-nested-block": (
        BUCKET % "  lifecycle_rule {\n    condition {\n      age = 1\n    }\n  }",
        [f'google_storage_bucket.b: required block "lifecycle_rule.action" is missing ({G} google_storage_bucket)'],
    ),
    "bad-enum-literal": (
        'resource "google_firestore_database" "d" {\n  name        = "(default)"\n  location_id = "nam5"\n  type        = "FIRESTORE"\n}\n',
        [f"google_firestore_database.d: \"type\" = \"FIRESTORE\" is not one of the values {G} google_firestore_database allows: ['FIRESTORE_NATIVE', 'DATASTORE_MODE']"],
    ),
    "bad-enum-through-a-local-and-a-dynamic-iterator": (
        'locals {\n  idx = { a = [["s", "ASCENDING"], ["t", "ASC"]] }\n}\n'
        'resource "google_firestore_index" "i" {\n  for_each   = local.idx\n  collection = "jobs"\n'
        '  dynamic "fields" {\n    for_each = each.value\n    content {\n      field_path = fields.value[0]\n      order      = fields.value[1]\n    }\n  }\n}\n',
        [f"google_firestore_index.i: \"fields.order\" = \"ASC\" is not one of the values {G} google_firestore_index allows: ['ASCENDING', 'DESCENDING']"],
    ),
    "bad-enum-a-variable-admits": (
        'variable "ingress" {\n  type    = string\n  default = "ALLOW_ALL"\n  validation {\n'
        '    condition     = contains(["ALLOW_ALL", "INTERNAL"], var.ingress)\n    error_message = "x"\n  }\n}\n'
        'resource "google_cloudfunctions2_function" "f" {\n  name     = "f"\n  location = "us-central1"\n'
        '  service_config {\n    ingress_settings = var.ingress\n  }\n}\n',
        ["google_cloudfunctions2_function.f: \"service_config.ingress_settings\" = \"INTERNAL\" is not one of the values "
         f"{G} google_cloudfunctions2_function allows: ['ALLOW_ALL', 'ALLOW_INTERNAL_ONLY', 'ALLOW_INTERNAL_AND_GCLB']"],
    ),
    "bad-reference-to-an-undeclared-resource": (
        BUCKET % "" + 'output "o" {\n  value = google_storage_bucket.data.name\n}\n',
        ['output.o: reference google_storage_bucket.data.name: no resource google_storage_bucket.data in infra/ (did you mean "google_storage_bucket.b"?)'],
    ),
    "bad-reference-to-an-attribute": (
        BUCKET % "" + 'output "o" {\n  value = google_storage_bucket.b.uri\n}\n',
        ['output.o: reference google_storage_bucket.b.uri: google_storage_bucket has no attribute "uri" (did you mean "url"?)'],
    ),
    "bad-reference-to-a-data-source-attribute": (
        'data "google_project" "p" {}\noutput "o" {\n  value = data.google_project.p.project_number\n}\n',
        ['output.o: reference data.google_project.p.project_number: google_project has no attribute "project_number" (did you mean "project_id"?)'],
    ),
    "bad-reference-without-instance-key": (
        BUCKET % "  count = 1" + 'output "o" {\n  value = google_storage_bucket.b.url\n}\n',
        ["output.o: reference google_storage_bucket.b.url: google_storage_bucket.b has count, so an attribute needs an instance key: google_storage_bucket.b[...].url"],
    ),
    "bad-reference-through-a-for-expression": (
        BUCKET % "  for_each = toset([\"x\"])" + 'output "o" {\n  value = [for b in google_storage_bucket.b : b.urls]\n}\n',
        ['output.o: reference google_storage_bucket.b[...].urls: google_storage_bucket has no attribute "urls" (did you mean "url"?)'],
    ),
    "computed-attribute-set": (
        BUCKET % '  self_link = "x"',
        [f'google_storage_bucket.b: "self_link" is computed by the provider ({G} google_storage_bucket): it cannot be set'],
    ),
    "block-written-as-an-argument": (
        BUCKET % "  versioning = { enabled = true }",
        [f'google_storage_bucket.b: "versioning" is a block in {G} google_storage_bucket, not an argument: write versioning {{ ... }}'],
    ),
    "single-block-repeated": (
        BUCKET % "  versioning {\n    enabled = true\n  }\n  versioning {\n    enabled = false\n  }",
        [f'google_storage_bucket.b: {G} google_storage_bucket allows at most one "versioning" block'],
    ),
    "unknown-resource-type": (
        'resource "google_storage_buckets" "b" {}\n',
        [f'google_storage_buckets.b: {G} has no resource type "google_storage_buckets" (did you mean "google_storage_bucket"?)'],
    ),
    "beta-only-resource-without-google-beta": (
        'resource "google_project_service_identity" "v" {\n  service = "aiplatform.googleapis.com"\n}\n',
        [f'google_project_service_identity.v: {G} has no resource type "google_project_service_identity" '
         "(hashicorp/google-beta 6.50.0 has it: set provider = google-beta)"],
    ),
    "ignore-changes-on-an-unknown-argument": (
        BUCKET % "  lifecycle {\n    ignore_changes = [label]\n  }",
        [f'google_storage_bucket.b: lifecycle.ignore_changes: {G} google_storage_bucket has no attribute "label" (did you mean "labels"?)'],
    ),
    "undeclared-variable-and-each-outside-for-each": (
        BUCKET % "  labels = { env = var.env, key = each.key }",
        ["google_storage_bucket.b: var.env is not declared", "google_storage_bucket.b: each.key is used where there is no for_each"],
    ),
}


@pytest.mark.parametrize("case", list(PLANTED), ids=list(PLANTED))
def test_a_planted_mistake_is_reported(tmp_path, schemas, case):
    text, expected = PLANTED[case]
    result = findings(tmp_path, schemas, HEADER + text)
    assert sorted(f"{f.where}: {f.message}" for f in result.findings) == sorted(expected), "\n".join(map(str, result.findings))
    assert all(f.file == "main.tf" and f.line > 0 for f in result.findings)


def test_a_required_block_behind_an_unknown_for_each_is_reported_as_unverified(tmp_path, schemas):
    text = HEADER + (
        'variable "idx" {\n  type = list(list(string))\n}\n'
        'resource "google_firestore_index" "i" {\n  collection = "jobs"\n'
        '  dynamic "fields" {\n    for_each = var.idx\n    content {\n      field_path = fields.value[0]\n    }\n  }\n}\n'
    )
    result = findings(tmp_path, schemas, text)
    assert result.findings == []
    assert [f"{f.where}: {f.message}" for f in result.unverified] == [
        'google_firestore_index.i: required block "fields" is given only by dynamic "fields", whose for_each cannot be evaluated offline'
    ]


def test_a_required_block_behind_an_empty_for_each_is_reported(tmp_path, schemas):
    text = HEADER + (
        'locals {\n  idx = { a = [["s", "ASCENDING"]], none = [] }\n}\n'
        'resource "google_firestore_index" "i" {\n  for_each   = local.idx\n  collection = "jobs"\n'
        '  dynamic "fields" {\n    for_each = each.value\n    content {\n      field_path = fields.value[0]\n    }\n  }\n}\n'
    )
    result = findings(tmp_path, schemas, text)
    assert [f"{f.where}: {f.message}" for f in result.findings] == [
        "google_firestore_index.i: required block \"fields\": dynamic \"fields\" for_each is empty for each.key 'none'"
    ]


def test_a_mistake_planted_in_a_copy_of_infra_is_reported_at_its_line(tmp_path, schemas):
    for path in INFRA.glob("*.tf"):
        shutil.copy(path, tmp_path / path.name)
    storage = tmp_path / "storage.tf"
    lines = storage.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith('resource "google_storage_bucket" "data"'))
    lines.insert(at + 1, "  storage_clas = \"STANDARD\"\n")
    storage.write_text("".join(lines))
    result = schema_check.check(tmp_path, schemas)
    assert [str(f) for f in result.findings] == [
        f'storage.tf:{at + 2}: google_storage_bucket.data: {G} google_storage_bucket has no argument "storage_clas" (did you mean "storage_class"?)'
    ]


# ------------------------------------------------------------------------------ the schema tool
def test_cloud_build_fetches_the_schemas_before_make_setup():
    steps = load_yaml(CLOUDBUILD)["steps"]
    ids = [step["id"] for step in steps]
    fetch = next((s for s in steps if "dev/tf-schema-fetch.sh" in s.get("args", [])), None)
    assert fetch, "cloudbuild.yaml: no step runs dev/tf-schema-fetch.sh (the Python image has no npm)"
    assert fetch["name"].startswith("node:") and ids.index(fetch["id"]) < ids.index("install") < ids.index("test")


def test_the_fetch_script_reads_the_same_pins():
    script = (REPO / "dev" / "tf-schema-fetch.sh").read_text()
    assert "infra/provider-schemas.txt" in script and "npm pack" in script
    assert all(pin.integrity.startswith("sha512-") and pin.tarball.endswith(f"-{pin.package_version}.tgz") for pin in tf_schema.read_pins())


P = "@cdktf/provider-x"
LINK = "https://registry.terraform.io/providers/acme/x/1.2.3/docs"


def _prop(name, type_, summary="", optional=False, link=None, **extra):
    docs = {"summary": summary}
    if link:
        docs["remarks"] = f"Docs at Terraform Registry: {{@link {LINK}/resources/x_thing#{link} Thing#{link}}}"
    return {"name": name, "type": type_, "docs": docs, **({"optional": True} if optional else {}), **extra}


STRING = {"primitive": "string"}
ASSEMBLY = {
    "name": P,
    "types": {
        f"{P}.thing.Thing": {
            "kind": "class", "base": "cdktf.TerraformResource", "fqn": f"{P}.thing.Thing",
            "docs": {"summary": f"Represents a {{@link {LINK}/resources/x_thing x_thing}}."},
            "initializer": {"parameters": [{"name": "scope", "type": {"fqn": "constructs.Construct"}}, {"name": "config", "type": {"fqn": f"{P}.thing.ThingConfig"}}]},
            "properties": [
                _prop("tfResourceType", STRING, static=True), _prop("name", STRING), _prop("nameInput", STRING),
                _prop("selfLink", STRING), _prop("rule", {"fqn": f"{P}.thing.ThingRuleList"}), _prop("status", {"fqn": f"{P}.thing.ThingStatusList"}),
            ],
        },
        f"{P}.thing.ThingConfig": {
            "kind": "interface", "datatype": True, "fqn": f"{P}.thing.ThingConfig",
            "properties": [
                _prop("name", STRING, "The name.", link="name"),
                _prop("mode", STRING, 'The mode. Possible values: ["FAST", "SLOW"]', optional=True, link="mode"),
                _prop("rule", {"union": {"types": [{"fqn": "cdktf.IResolvable"}, {"collection": {"kind": "array", "elementtype": {"fqn": f"{P}.thing.ThingRule"}}}]}}, "rule block.", optional=True, link="rule"),
                _prop("buildAttribute", {"fqn": f"{P}.thing.ThingBuild"}, "build block.", optional=True, link="build"),
                _prop("ipv4Cidr", STRING, "A range.", optional=True),
            ],
        },
        f"{P}.thing.ThingRule": {"kind": "interface", "datatype": True, "fqn": f"{P}.thing.ThingRule", "properties": [_prop("action", STRING, "What.", link="action")]},
        f"{P}.thing.ThingRuleOutputReference": {
            "kind": "class", "base": "cdktf.ComplexObject", "fqn": f"{P}.thing.ThingRuleOutputReference",
            "properties": [_prop("action", STRING), _prop("actionInput", STRING), _prop("internalValue", STRING), _prop("ruleId", STRING)],
        },
        f"{P}.thing.ThingRuleList": {"kind": "class", "base": "cdktf.ComplexList", "fqn": f"{P}.thing.ThingRuleList",
                                     "methods": [{"name": "get", "returns": {"type": {"fqn": f"{P}.thing.ThingRuleOutputReference"}}}]},
        f"{P}.thing.ThingStatusList": {"kind": "class", "base": "cdktf.ComplexList", "fqn": f"{P}.thing.ThingStatusList",
                                       "methods": [{"name": "get", "returns": {"type": {"fqn": f"{P}.thing.ThingStatusOutputReference"}}}]},
        f"{P}.thing.ThingStatusOutputReference": {"kind": "class", "base": "cdktf.ComplexObject", "fqn": f"{P}.thing.ThingStatusOutputReference",
                                                  "properties": [_prop("state", STRING)]},
        f"{P}.thing.ThingBuild": {"kind": "interface", "datatype": True, "fqn": f"{P}.thing.ThingBuild", "properties": [_prop("step", STRING, optional=True)]},
        f"{P}.provider.XProvider": {
            "kind": "class", "base": "cdktf.TerraformProvider", "fqn": f"{P}.provider.XProvider",
            "docs": {"summary": f"Represents a {{@link {LINK} x}}."},
            "initializer": {"parameters": [{"name": "config", "type": {"fqn": f"{P}.provider.XProviderConfig"}}]},
        },
        f"{P}.provider.XProviderConfig": {"kind": "interface", "datatype": True, "fqn": f"{P}.provider.XProviderConfig", "properties": [_prop("region", STRING, optional=True)]},
    },
}
PACKAGE_JSON = {"name": P, "cdktf": {"provider": {"name": "registry.terraform.io/acme/x", "version": "1.2.3"}}}


def test_derive_reads_arguments_blocks_computed_attributes_and_enums():
    pin = tf_schema.Pin("acme/x", "1.2.3", P, "9.0.0", "sha512-unused")
    schema = tf_schema.derive(ASSEMBLY, PACKAGE_JSON, pin)
    assert schema["provider"] == {"attributes": {"region": {"mode": "optional"}}, "blocks": {}}
    assert schema["data_sources"] == {}
    assert schema["resources"] == {"x_thing": {
        "attributes": {
            "id": {"mode": "computed"},
            "ipv4_cidr": {"mode": "optional"},
            "mode": {"mode": "optional", "enum": ["FAST", "SLOW"]},
            "name": {"mode": "required"},
            "self_link": {"mode": "computed"},
        },
        "blocks": {
            # the registry link's name, not the bindings' (buildAttribute: `build` clashes in cdktf)
            "build": {"required": False, "max_one": True, "attributes": {"step": {"mode": "optional"}}, "blocks": {}},
            "rule": {"required": False, "max_one": False, "attributes": {"action": {"mode": "required"}, "rule_id": {"mode": "computed"}}, "blocks": {}},
            "status": {"required": False, "computed": True, "max_one": False, "attributes": {"state": {"mode": "computed"}}, "blocks": {}},
        },
    }}


def test_derive_refuses_a_package_built_from_another_provider_version():
    pin = tf_schema.Pin("acme/x", "1.2.4", P, "9.0.0", "sha512-unused")
    with pytest.raises(tf_schema.SchemaError, match=re.escape("not acme/x 1.2.4")):
        tf_schema.derive(ASSEMBLY, PACKAGE_JSON, pin)


def _tarball(path):
    import io
    import json
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, doc in (("package/package.json", PACKAGE_JSON), ("package/.jsii", ASSEMBLY)):
            data = json.dumps(doc).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_load_checks_integrity_derives_once_and_then_reads_the_cache(tmp_path):
    pin = tf_schema.Pin("acme/x", "1.2.3", P, "9.0.0", "sha512-placeholder")
    tarball = tmp_path / pin.tarball
    _tarball(tarball)
    good = tf_schema.Pin(pin.source, pin.version, pin.package, pin.package_version, tf_schema._integrity(tarball))

    with pytest.raises(tf_schema.SchemaError, match="is not the pinned sha512-placeholder"):
        tf_schema.load(tmp_path, [pin])
    assert not tarball.exists(), "a tarball that fails its integrity check is deleted"

    _tarball(tarball)
    first = tf_schema.load(tmp_path, [good])
    assert list(first["acme/x"]["resources"]) == ["x_thing"]
    assert (tmp_path / good.schema_file).exists()
    tarball.unlink()  # the derived schema is enough from now on
    assert tf_schema.load(tmp_path, [good]) == first


def test_read_pins_rejects_a_malformed_line(tmp_path):
    pins = tmp_path / "pins.txt"
    pins.write_text("# comment\nhashicorp/google 6.50.0 @cdktf/provider-google 16.12.1\n")
    with pytest.raises(ValueError, match=re.escape("pins.txt:2")):
        tf_schema.read_pins(pins)
