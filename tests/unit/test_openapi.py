"""The OpenAPI document (core/openapi.py): a valid OpenAPI 3.1 document, and every path the api
function dispatches (edges/api.py, edges/openai_videos.py) is in it."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from veorelay.core.openapi import ROUTES, document

EDGES = Path(__file__).resolve().parents[2] / "functions" / "veorelay" / "edges"
DISPATCHERS = ("api.py", "openai_videos.py")


def route_literals(source: str) -> set[str]:
    """Every path the module compares a request's path with: string constants that start with
    `/` (path == "/jobs") or `^/` (a route regex), outside f-strings (links, messages)."""
    tree = ast.parse(source)
    in_fstrings = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in in_fstrings:
            text = node.value
            if re.match(r"^\^?/[A-Za-z0-9]", text) and " " not in text:
                found.add(text)
    return found


def as_template(literal: str) -> str:
    """A route regex as an OpenAPI path template: (?P<id>[^/:]+) -> {id}, optional groups expanded later."""
    text = literal.lstrip("^").rstrip("$")
    return re.sub(r"\(\?P<(\w+)>\[\^/:?\]\+\)", r"{\1}", text)


def expand(template: str) -> set[str]:
    """Optional suffix groups (?P<cancel>:cancel)? or (?P<rest>/content|/remix)? give one path each way."""
    match = re.search(r"\(\?P<\w+>([^)]*)\)\?", template)
    if not match:
        return {template}
    head, tail = template[: match.start()], template[match.end():]
    return {p for option in ["", *match.group(1).split("|")] for p in expand(head + option + tail)}


def documented(path: str, paths: set[str]) -> bool:
    """`path` (with {param} placeholders named as the code names them) is a documented path."""
    shape = re.sub(r"\{\w+\}", "{}", path)
    return any(re.sub(r"\{\w+\}", "{}", p) == shape for p in paths)


def dispatched_paths() -> set[str]:
    paths = set()
    for name in DISPATCHERS:
        for literal in route_literals((EDGES / name).read_text()):
            for path in expand(as_template(literal)):
                # A literal ending in "/" is a prefix matched by startswith: something follows it.
                paths.add(path + "{rest}" if path.endswith("/") else path)
    # The prefix edges/openai_videos.py answers for in OpenAI's shape (every path under it is a route below).
    return paths - {"/v1", "/v1/{rest}"}


def test_every_dispatched_route_is_documented():
    dispatched = dispatched_paths()
    shapes = {re.sub(r"\{\w+\}", "{}", p) for p in dispatched}
    assert {"/jobs", "/providers", "/openapi.json", "/jobs/{}", "/jobs/{}:cancel", "/v1/videos", "/v1/videos/{}/content",
            "/v1/videos/characters/{}"} <= shapes, shapes
    missing = sorted(p for p in dispatched if not documented(p, set(document()["paths"])))
    assert not missing, f"dispatched by the api function but not in the OpenAPI document: {missing}"


def test_the_route_finder_sees_a_new_route():
    """The check above cannot pass by finding nothing: a new route literal is found and missing."""
    source = 'if path == "/planted":\n    pass\n_X = re.compile(r"^/planted/(?P<id>[^/:]+)$")\nmsg = f"/jobs/{x}"\n'
    found = {p for literal in route_literals(source) for p in expand(as_template(literal))}
    assert found == {"/planted", "/planted/{id}"}
    assert not documented("/planted", set(document()["paths"]))


def test_a_valid_openapi_31_document():
    from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

    doc = json.loads(json.dumps(document()))  # what GET /openapi.json sends
    errors = [str(e) for e in OPENAPI_31_VALIDATOR.iter_errors(doc)]
    assert not errors, errors[:3]
    assert doc["openapi"].startswith("3.1")


def test_every_reference_resolves_and_every_schema_is_json_schema():
    import jsonschema_rs

    doc = document()
    text = json.dumps(doc)
    for ref in set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', text)):
        assert ref in doc["components"]["schemas"], f"unresolved $ref {ref}"
    meta = jsonschema_rs.Draft202012Validator({"$ref": "https://json-schema.org/draft/2020-12/schema"})
    for name, schema in doc["components"]["schemas"].items():
        assert meta.is_valid(schema), name


def test_the_job_request_schema_is_the_pydantic_models():
    from veorelay.core.request import GenerationRequest

    schema = document()["components"]["schemas"]["GenerationRequest"]
    assert set(schema["properties"]) == set(GenerationRequest.model_fields)
    assert schema["additionalProperties"] is False and schema["required"] == ["prompt"]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_every_operation_documents_its_errors(route):
    op = document()["paths"][route.path][route.method]
    if route.auth:
        assert "401" in op["responses"] and "security" not in op
        schema = op["responses"]["401"]["content"]["application/json"]["schema"]["$ref"]
        assert schema.endswith("/OpenAIError" if route.path.startswith("/v1/") else "/Error")
    else:
        assert op["security"] == []
    assert any(code.startswith(("2", "4")) for code in op["responses"])
