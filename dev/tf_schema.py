"""Terraform provider schemas for the offline check of infra/ (tests/infra/test_provider_schema.py).

`terraform validate` needs the provider binaries, which this project's machines cannot download.
The npm registry's prebuilt CDK for Terraform bindings (`@cdktf/provider-google`, ...) are
generated from a given provider version's schema, and their `.jsii` assembly records it: every
resource and data source, each argument (required or optional) with its documentation (where
the provider documents allowed values: "Possible values: [...]"), each nested block (required
or not, one or many) and each computed attribute. infra/provider-schemas.txt pins the package
for each provider; this module fetches each pinned tarball once (dev/tf-schema-fetch.sh, `npm
pack`), checks its integrity, and derives a compact schema (about 1.8 MB of JSON for google) into
.cache/tf-schema/, which the test reads in well under a second.

    python -m dev.tf_schema        fetch what is missing, derive, print the schemas' paths

The .cache/ directory is not committed: google and google-beta together are 3.6 MB, and both
follow from the pinned packages, so a fresh machine derives them again (`make setup` does).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PINS = REPO / "infra" / "provider-schemas.txt"
CACHE = REPO / ".cache" / "tf-schema"
FETCH = REPO / "dev" / "tf-schema-fetch.sh"
FETCH_TIMEOUT_S = 900

# Any change to this file derives the schemas again (from the cached tarballs).
GENERATOR = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]

RESOURCE, DATA_SOURCE, PROVIDER = "cdktf.TerraformResource", "cdktf.TerraformDataSource", "cdktf.TerraformProvider"
# "Represents a {@link https://registry.terraform.io/providers/hashicorp/google/6.50.0/docs/resources/storage_bucket
#  google_storage_bucket}." (one line in the assembly)
_CLASS_LINK = re.compile(
    r"\{@link https://registry\.terraform\.io/providers/(?P<source>[\w-]+/[\w-]+)/(?P<version>[^/]+)/docs"
    r"(?:/(?P<kind>resources|data-sources)/\w+)? (?P<name>[\w-]+)\}"
)
# "... {@link https://registry.terraform.io/.../docs/resources/storage_bucket#force_destroy StorageBucket#force_destroy}"
_PROPERTY_LINK = re.compile(r"\{@link https://registry\.terraform\.io/providers/[^ ]*#(?P<name>\w+) ")
# Magic Modules documents an enum as: Possible values: ["FIRESTORE_NATIVE", "DATASTORE_MODE"]
_POSSIBLE_VALUES = re.compile(r"Possible values: \[([^\]]*)\]")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Pin:
    source: str  # hashicorp/google
    version: str  # provider version the package was generated from
    package: str  # @cdktf/provider-google
    package_version: str
    integrity: str  # npm dist.integrity: sha512-<base64>

    @property
    def tarball(self) -> str:
        return f"{self.package.removeprefix('@').replace('/', '-')}-{self.package_version}.tgz"

    @property
    def schema_file(self) -> str:
        return f"{self.source.replace('/', '-')}-{self.version}.json"


def read_pins(path: Path = PINS) -> list[Pin]:
    pins = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split("#", 1)[0].split() if not line.lstrip().startswith("#") else []
        if not fields:
            continue
        if len(fields) != 5 or not fields[4].startswith("sha512-"):
            raise ValueError(f"{path.name}:{lineno}: expected 'source version package package_version sha512-...', got {line!r}")
        pins.append(Pin(*fields))
    return pins


# ------------------------------------------------------------------------------ fetch
def _integrity(path: Path) -> str:
    digest = hashlib.sha512()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def _fetch(cache: Path) -> None:
    try:
        proc = subprocess.run(["bash", str(FETCH), str(cache)], capture_output=True, text=True, timeout=FETCH_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise SchemaError(f"{FETCH.name} took more than {FETCH_TIMEOUT_S} s") from exc
    if proc.returncode != 0:
        raise SchemaError(f"{FETCH.name} failed (exit {proc.returncode}):\n{proc.stderr.strip()}")


class SchemaError(RuntimeError):
    pass


def _tarball(pin: Pin, cache: Path) -> Path:
    path = cache / pin.tarball
    if not path.exists():
        _fetch(cache)
    if not path.exists():
        raise SchemaError(f"{path} is missing after {FETCH.name}")
    actual = _integrity(path)
    if actual != pin.integrity:
        path.unlink()
        raise SchemaError(f"{pin.tarball}: integrity {actual} is not the pinned {pin.integrity} (deleted; fetch it again)")
    return path


def _read_assembly(tarball: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """package/.jsii and package/package.json, read from the tarball without unpacking it."""
    with tarfile.open(tarball, "r:gz") as tar:
        found: dict[str, Any] = {}
        for member in tar:
            if member.name in ("package/.jsii", "package/package.json"):
                fh = tar.extractfile(member)
                assert fh is not None
                found[member.name] = json.load(fh)
                if len(found) == 2:
                    break
    if len(found) != 2:
        raise SchemaError(f"{tarball.name} has no package/.jsii or package/package.json")
    return found["package/.jsii"], found["package/package.json"]


# ------------------------------------------------------------------------------ derive
def camel_to_snake(name: str) -> str:
    return re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), name)


def _doc(prop: dict[str, Any]) -> str:
    docs = prop.get("docs", {})
    return f"{docs.get('summary', '')} {docs.get('remarks', '')}"


class _Deriver:
    def __init__(self, assembly: dict[str, Any]) -> None:
        self.types: dict[str, Any] = assembly["types"]
        self.prefix = assembly["name"] + "."

    def _own(self, fqn: str | None) -> dict[str, Any] | None:
        return self.types.get(fqn) if fqn and fqn.startswith(self.prefix) else None

    def _struct_of(self, type_ref: dict[str, Any]) -> tuple[str, bool] | None:
        """The nested-block struct a property's type names, and whether it is a list of them."""
        if "fqn" in type_ref:
            t = self._own(type_ref["fqn"])
            return (type_ref["fqn"], False) if t and t.get("datatype") else None
        if "collection" in type_ref and type_ref["collection"]["kind"] == "array":
            inner = self._struct_of(type_ref["collection"]["elementtype"])
            return (inner[0], True) if inner else None
        for member in type_ref.get("union", {}).get("types", []):
            found = self._struct_of(member)
            if found:
                return found
        return None

    def _computed_block(self, type_ref: dict[str, Any]) -> tuple[str, bool] | None:
        """A getter typed XList / XOutputReference (a computed nested object): its reference class."""
        t = self._own(type_ref.get("fqn"))
        if not t or t.get("kind") != "class":
            return None
        if t.get("base") == "cdktf.ComplexList":
            for method in t.get("methods", []):
                if method["name"] == "get":
                    return method["returns"]["type"]["fqn"], True
            return None
        if t.get("base") == "cdktf.ComplexObject":
            return t["fqn"], False
        return None

    def block(self, struct_fqn: str | None, getters_fqn: str | None, depth: int = 0) -> dict[str, Any]:
        if depth > 20:
            raise SchemaError(f"nesting too deep at {struct_fqn or getters_fqn}")
        attributes: dict[str, Any] = {}
        blocks: dict[str, Any] = {}
        names: dict[str, str] = {}
        struct = self._own(struct_fqn)
        for prop in struct.get("properties", []) if struct else []:
            link = _PROPERTY_LINK.search(_doc(prop))
            name = link.group("name") if link else camel_to_snake(prop["name"])
            names[prop["name"]] = name
            nested = self._struct_of(prop["type"])
            if nested:
                fqn, is_list = nested
                ref = fqn + "OutputReference"
                blocks[name] = {
                    "required": not prop.get("optional", False),
                    "max_one": not is_list,
                    **self.block(fqn, ref if ref in self.types else None, depth + 1),
                }
                continue
            attribute: dict[str, Any] = {"mode": "optional" if prop.get("optional") else "required"}
            enum = _POSSIBLE_VALUES.search(_doc(prop))
            if enum:
                attribute["enum"] = [v.replace('\\"', '"') for v in _QUOTED.findall(enum.group(1))]
            attributes[name] = attribute
        getters = self._own(getters_fqn)
        props = [p for p in getters.get("properties", []) if not p.get("static")] if getters else []
        own = {p["name"] for p in props}
        for prop in props:
            camel = prop["name"]
            if camel == "internalValue" or (camel.endswith("Input") and camel.removesuffix("Input") in own):
                continue
            name = names.get(camel) or camel_to_snake(camel)
            if name in attributes or name in blocks:
                continue
            nested = self._computed_block(prop["type"])
            if nested:
                fqn, is_list = nested
                blocks[name] = {"required": False, "computed": True, "max_one": not is_list, **self.block(None, fqn, depth + 1)}
            else:
                attributes[name] = {"mode": "computed"}
        return {"attributes": dict(sorted(attributes.items())), "blocks": dict(sorted(blocks.items()))}

    def config_of(self, cls: dict[str, Any]) -> str | None:
        for param in cls.get("initializer", {}).get("parameters", []):
            if param["name"] == "config":
                fqn: str = param["type"]["fqn"]
                return fqn
        return None


def derive(assembly: dict[str, Any], package_json: dict[str, Any], pin: Pin) -> dict[str, Any]:
    provider = package_json.get("cdktf", {}).get("provider", {})
    if provider.get("name") != f"registry.terraform.io/{pin.source}" or provider.get("version") != pin.version:
        raise SchemaError(f"{pin.package}@{pin.package_version} was generated from {provider}, not {pin.source} {pin.version}")
    deriver = _Deriver(assembly)
    schema: dict[str, Any] = {
        "source": pin.source,
        "version": pin.version,
        "package": f"{pin.package}@{pin.package_version}",
        "generator": GENERATOR,
        "provider": None,
        "resources": {},
        "data_sources": {},
    }
    for cls in deriver.types.values():
        base = cls.get("base")
        if cls.get("kind") != "class" or base not in (RESOURCE, DATA_SOURCE, PROVIDER):
            continue
        link = _CLASS_LINK.search(cls.get("docs", {}).get("summary", ""))
        if not link or link.group("source") != pin.source or link.group("version") != pin.version:
            raise SchemaError(f"{cls['fqn']}: no {pin.source} {pin.version} registry link in {cls.get('docs')}")
        block = deriver.block(deriver.config_of(cls), cls["fqn"])
        # Every resource and data source has an id, whether or not the bindings expose it.
        block["attributes"].setdefault("id", {"mode": "computed"})
        if base == PROVIDER:
            block["attributes"].pop("id")
            schema["provider"] = block
        else:
            kind = "resources" if base == RESOURCE else "data_sources"
            if (link.group("kind") == "resources") != (kind == "resources"):
                raise SchemaError(f"{cls['fqn']}: a {base} documented as {link.group('kind')}")
            schema[kind][link.group("name")] = block
    if schema["provider"] is None or (not schema["resources"] and not schema["data_sources"]):
        raise SchemaError(f"{pin.package}@{pin.package_version}: no provider or no resource in the assembly")
    schema["resources"] = dict(sorted(schema["resources"].items()))
    schema["data_sources"] = dict(sorted(schema["data_sources"].items()))
    return schema


# ------------------------------------------------------------------------------ cache
def _cached(path: Path, pin: Pin) -> dict[str, Any] | None:
    """The compact schema at path if it was derived from pin's package by this generator."""
    try:
        with open(path, encoding="utf-8") as fh:
            schema: dict[str, Any] = json.load(fh)
    except (OSError, ValueError):
        return None
    current = schema.get("generator") == GENERATOR and schema.get("package") == f"{pin.package}@{pin.package_version}"
    return schema if current else None


def load(cache: Path = CACHE, pins: list[Pin] | None = None) -> dict[str, dict[str, Any]]:
    """The compact schema of each pinned provider, by source (hashicorp/google, ...): read from
    the cache, or derived from the pinned tarball (fetched first if it is not cached either)."""
    cache.mkdir(parents=True, exist_ok=True)
    schemas = {}
    for pin in pins if pins is not None else read_pins():
        path = cache / pin.schema_file
        schema = _cached(path, pin)
        if schema is None:
            assembly, package_json = _read_assembly(_tarball(pin, cache))
            schema = derive(assembly, package_json, pin)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(schema, separators=(",", ":")), encoding="utf-8")
            tmp.replace(path)
        schemas[pin.source] = schema
    return schemas


def main() -> int:
    try:
        schemas = load()
    except SchemaError as exc:
        print(f"tf_schema: {exc}", file=sys.stderr)
        return 1
    for source, schema in schemas.items():
        path = CACHE / f"{source.replace('/', '-')}-{schema['version']}.json"
        print(
            f"{source} {schema['version']} ({schema['package']}): {len(schema['resources'])} resources, "
            f"{len(schema['data_sources'])} data sources, {path.relative_to(REPO)} ({path.stat().st_size // 1024} KiB)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
