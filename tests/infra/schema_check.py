"""infra/*.tf checked against the real provider schemas (dev/tf_schema.py), without Terraform's
provider binaries: what `terraform validate` would refuse, and a few things it finds only at plan.

For every `resource` and `data` block (and the `provider` blocks):
  - the type exists in the schema of the provider that serves it (the type's prefix, or its
    `provider =` meta-argument, mapped through required_providers in versions.tf);
  - every argument set is an argument of that type (not a computed attribute, not a block), every
    nested block (plain or `dynamic "x" { content { ... } }`) is a block of it, recursively, and a
    block the schema allows once appears once;
  - every required argument is set (and not to a literal null), and every required block is
    there: a block given only by a `dynamic` block counts when its for_each is known to be
    non-empty for every instance; when that cannot be evaluated offline it is reported apart, as
    unverified, never passed silently;
  - where the provider documents the allowed values ("Possible values: [...]"), every value that
    can be known offline is one of them: literals (also in either branch of a conditional), values
    reached through locals, each.value and dynamic iterators, and a variable's default and the
    values its validation admits;
  - lifecycle.ignore_changes names arguments of the type;
and every reference, in those blocks and in locals and outputs: `google_x.name.attr` and
`data.google_y.name.attr` name a declared resource or data source and a real attribute (argument,
computed attribute or nested block) of its type, with an instance key exactly when it has count
or for_each; `var.x` and `local.x` are declared; `each` and `count` appear only where they exist;
depends_on lists whole resources.

A small evaluator knows literals, locals made of literals, each.key / each.value of a for_each over
such a local, and dynamic iterators; anything else (functions, variables, for expressions) is
unknown, and a check that needs it is skipped for that value only (or reported as unverified).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lark import Token, Tree


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()
MAX_ENVS = 2000

RESOURCE_META_ARGS = {"count", "for_each", "provider", "depends_on"}
RESOURCE_META_BLOCKS = {"lifecycle", "provisioner", "connection"}
DATA_META_BLOCKS = {"lifecycle"}
LIFECYCLE_ARGS = {"create_before_destroy", "prevent_destroy", "ignore_changes", "replace_triggered_by"}
LIFECYCLE_BLOCKS = {"precondition", "postcondition"}
CONDITION_ARGS = {"condition", "error_message"}
DYNAMIC_ARGS = {"for_each", "iterator", "labels"}
PATH_ATTRS = {"module", "root", "cwd"}
_ESCAPES = {'\\"': '"', "\\\\": "\\", "\\n": "\n", "\\t": "\t", "\\r": "\r", "$${": "${", "%%{": "%{"}
_ESCAPE_RE = re.compile("|".join(re.escape(k) for k in _ESCAPES))
_HEREDOC_INTERP = re.compile(r"(?<!\$)\$\{([^{}]*)\}")


@dataclass(frozen=True, order=True)
class Finding:
    file: str
    line: int
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.where}: {self.message}"


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    unverified: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # addresses of the blocks checked against a schema


# ------------------------------------------------------------------------------ lark helpers
def kids(node: Tree) -> list[Tree]:
    """Child nodes, without the comments and line breaks python-hcl2 keeps."""
    return [c for c in node.children if isinstance(c, Tree) and c.data != "new_line_or_comment"]


def line_of(node: Tree) -> int:
    return 0 if node.meta.empty else node.meta.line


def name_of(node: Tree) -> str:
    """identifier / keyword node -> its text."""
    tokens = [c for c in node.children if isinstance(c, Token)]
    return str(tokens[0]) if tokens else ""


def unwrap(node: Tree) -> Tree:
    """expr_term wrappers and parentheses removed."""
    while node.data == "expr_term" and len(kids(node)) == 1:
        node = kids(node)[0]
    return node


def unescape(text: str) -> str:
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], text)


@dataclass(frozen=True)
class Attr:
    name: str
    node: Tree  # the expression
    line: int


@dataclass(frozen=True)
class Block:
    type: str
    labels: tuple[str, ...]
    body: Tree | None
    line: int


def members(body: Tree | None) -> tuple[list[Attr], list[Block]]:
    attrs: list[Attr] = []
    blocks: list[Block] = []
    for child in kids(body) if body is not None else []:
        if child.data == "attribute":
            name_node, expr = kids(child)[0], kids(child)[-1]
            attrs.append(Attr(name_of(name_node), expr, line_of(child)))
        elif child.data == "block":
            parts = kids(child)
            labels = tuple(literal_text(p) if p.data == "string" else name_of(p) for p in parts[1:] if p.data in ("string", "identifier"))
            inner = next((p for p in parts[1:] if p.data == "body"), None)
            blocks.append(Block(name_of(parts[0]), labels, inner, line_of(child)))
    return attrs, blocks


def literal_text(node: Tree) -> str:
    """A quoted string without interpolations, as Terraform reads it."""
    value = string_value(node, None, {})
    return value if isinstance(value, str) else ""


def string_value(node: Tree, evaluator: Evaluator | None, env: dict[str, Any]) -> Any:
    out = []
    for part in kids(node):
        for piece in part.children:
            if isinstance(piece, Token):
                out.append(unescape(str(piece)))
                continue
            value = evaluator.ev(kids(piece)[0], env) if evaluator else UNKNOWN
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                return UNKNOWN
            out.append(str(value))
    return "".join(out)


# ------------------------------------------------------------------------------ traversals
@dataclass(frozen=True)
class Step:
    kind: str  # "attr" | "index" | "splat"
    name: str = ""
    index: Tree | None = None


def traversal(node: Tree) -> tuple[str, list[Step]] | None:
    """`a.b[c].d` -> ("a", [attr b, index c, attr d]); None if node is not a traversal."""
    node = unwrap(node)
    if node.data == "identifier":
        return name_of(node), []
    if node.data not in ("get_attr_expr_term", "index_expr_term", "full_splat_expr_term", "attr_splat_expr_term"):
        return None
    parts = kids(node)
    base = traversal(parts[0])
    if base is None:
        return None
    root, steps = base
    for part in parts[1:]:
        steps.extend(_steps(part))
    return root, steps


def _steps(part: Tree) -> list[Step]:
    if part.data == "get_attr":
        return [Step("attr", name_of(kids(part)[0]))]
    if part.data == "braces_index":
        return [Step("index", index=kids(part)[0])]
    if part.data == "short_index":
        return [Step("index")]
    if part.data in ("full_splat", "attr_splat"):
        steps = [Step("splat")]
        for inner in kids(part):
            steps.extend(_steps(inner))
        return steps
    return []


# ------------------------------------------------------------------------------ the module
@dataclass
class Decl:
    kind: str  # "resource" | "data"
    type: str
    name: str
    file: str
    block: Block
    attrs: dict[str, Attr]

    @property
    def address(self) -> str:
        return f"{self.type}.{self.name}" if self.kind == "resource" else f"data.{self.type}.{self.name}"

    @property
    def keyed(self) -> str | None:
        return "for_each" if "for_each" in self.attrs else "count" if "count" in self.attrs else None


@dataclass
class Module:
    files: dict[str, Tree]
    resources: dict[tuple[str, str], Decl] = field(default_factory=dict)
    data: dict[tuple[str, str], Decl] = field(default_factory=dict)
    variables: dict[str, tuple[str, Block]] = field(default_factory=dict)
    locals: dict[str, tuple[str, Attr]] = field(default_factory=dict)
    outputs: list[tuple[str, Block]] = field(default_factory=list)
    providers: list[tuple[str, Block]] = field(default_factory=list)
    terraform: list[tuple[str, Block]] = field(default_factory=list)
    modules: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, directory: Path) -> Module:
        import hcl2

        module = cls({p.name: hcl2.parses_to_tree(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.tf"))})
        for file, tree in module.files.items():
            _, blocks = members(kids(tree)[0])
            for block in blocks:
                module._add(file, block)
        return module

    def _add(self, file: str, block: Block) -> None:
        if block.type in ("resource", "data") and len(block.labels) == 2:
            attrs, _ = members(block.body)
            decl = Decl(block.type, block.labels[0], block.labels[1], file, block, {a.name: a for a in attrs})
            (self.resources if block.type == "resource" else self.data)[(decl.type, decl.name)] = decl
        elif block.type == "variable" and block.labels:
            self.variables[block.labels[0]] = (file, block)
        elif block.type == "locals":
            for attr in members(block.body)[0]:
                self.locals[attr.name] = (file, attr)
        elif block.type == "output":
            self.outputs.append((file, block))
        elif block.type == "provider":
            self.providers.append((file, block))
        elif block.type == "terraform":
            self.terraform.append((file, block))
        elif block.type == "module" and block.labels:
            self.modules.add(block.labels[0])

    def required_providers(self, evaluator: Evaluator) -> dict[str, str]:
        """Local provider name -> source, from terraform { required_providers { ... } }."""
        found: dict[str, str] = {}
        for _, block in self.terraform:
            for inner in members(block.body)[1]:
                if inner.type != "required_providers":
                    continue
                for attr in members(inner.body)[0]:
                    value = evaluator.ev(attr.node, {})
                    source = value.get("source") if isinstance(value, dict) else value if isinstance(value, str) else None
                    if isinstance(source, str):
                        found[attr.name] = source.removeprefix("registry.terraform.io/")
        return found


# ------------------------------------------------------------------------------ evaluation
class Evaluator:
    """Values knowable offline: literals, locals built of them, each and iterators; UNKNOWN otherwise."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self._locals: dict[str, Any] = {}
        self._busy: set[str] = set()

    def local(self, name: str) -> Any:
        if name not in self._locals:
            if name in self._busy or name not in self.module.locals:
                return UNKNOWN
            self._busy.add(name)
            self._locals[name] = self.ev(self.module.locals[name][1].node, {})
            self._busy.discard(name)
        return self._locals[name]

    def ev(self, node: Tree, env: dict[str, Any]) -> Any:
        node = unwrap(node)
        kind = node.data
        if kind == "string":
            return string_value(node, self, env)
        if kind in ("int_lit", "float_lit"):
            text = name_of(node)
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "literal_value":
            return {"true": True, "false": False, "null": None}.get(name_of(node), UNKNOWN)
        if kind == "tuple":
            return [self.ev(item, env) for item in kids(node)]
        if kind == "object":
            return self._object(node, env)
        if kind == "conditional":
            cond, yes, no = kids(node)
            test = self.ev(cond, env)
            return UNKNOWN if not isinstance(test, bool) else self.ev(yes if test else no, env)
        path = traversal(node)
        return self._traverse(path, env) if path else UNKNOWN

    def _object(self, node: Tree, env: dict[str, Any]) -> Any:
        out: dict[Any, Any] = {}
        for elem in kids(node):
            if elem.data != "object_elem":
                continue
            key_node, value_node = kids(elem)[0], kids(elem)[-1]
            key_expr = unwrap(kids(key_node)[0]) if key_node.data == "object_elem_key" else unwrap(key_node)
            key = name_of(key_expr) if key_expr.data == "identifier" else self.ev(key_expr, env)
            if key is UNKNOWN:
                return UNKNOWN
            out[key] = self.ev(value_node, env)
        return out

    def _traverse(self, path: tuple[str, list[Step]], env: dict[str, Any]) -> Any:
        root, steps = path
        if root == "local" and steps and steps[0].kind == "attr":
            value, steps = self.local(steps[0].name), steps[1:]
        elif root in env:
            value = env[root]
        else:
            return UNKNOWN
        for step in steps:
            value = self._step(value, step, env)
        return value

    def _step(self, value: Any, step: Step, env: dict[str, Any]) -> Any:
        if step.kind == "attr":
            return value.get(step.name, UNKNOWN) if isinstance(value, dict) else UNKNOWN
        if step.kind == "index" and step.index is not None:
            key = self.ev(step.index, env)
            if isinstance(value, dict) and isinstance(key, str):
                return value.get(key, UNKNOWN)
            if isinstance(value, list) and isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(value):
                return value[key]
        return UNKNOWN


def for_each_items(value: Any) -> list[tuple[Any, Any]] | None:
    """The (key, value) pairs a known for_each value iterates, or None if unknown."""
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, list) and UNKNOWN not in value:
        return list(enumerate(value))
    return None


# ------------------------------------------------------------------------------ the checker
def close(name: str, options: Any) -> str:
    match = difflib.get_close_matches(name, sorted(options), n=1)
    return f' (did you mean "{match[0]}"?)' if match else ""


@dataclass
class Context:
    """Where a body is: the declaration, its provider schema label, the block path, the known
    environments (one per instance the evaluator can tell apart), the names bound here."""

    file: str
    where: str
    label: str  # "hashicorp/google 6.50.0 google_storage_bucket"
    envs: list[dict[str, Any]]
    bound: frozenset[str] = frozenset()
    path: tuple[str, ...] = ()

    def at(self, name: str) -> str:
        return ".".join((*self.path, name))


class Checker:
    def __init__(self, module: Module, schemas: dict[str, dict[str, Any]]) -> None:
        self.module = module
        self.schemas = schemas
        self.ev = Evaluator(module)
        self.report = Report()
        self.providers = module.required_providers(self.ev)

    # -------------------------------------------------------------- entry points
    def run(self) -> Report:
        for decl in [*self.module.resources.values(), *self.module.data.values()]:
            self.check_decl(decl)
        for file, block in self.module.providers:
            self.check_provider(file, block)
        for name, (file, attr) in self.module.locals.items():
            self.refs(attr.node, Context(file, f"local.{name}", "", [{}]))
        for file, block in self.module.outputs:
            self.refs_in_body(block.body, Context(file, f"output.{block.labels[0] if block.labels else '?'}", "", [{}]))
        for name, (file, block) in self.module.variables.items():
            for inner in members(block.body)[1]:
                if inner.type == "validation":
                    self.refs_in_body(inner.body, Context(file, f"var.{name}", "", [{}]))
        self.report.findings.sort()
        self.report.unverified.sort()
        return self.report

    def fail(self, ctx: Context, line: int, message: str) -> None:
        self.report.findings.append(Finding(ctx.file, line, ctx.where, message))

    def schema_source(self, decl_type: str, provider_attr: Attr | None) -> str:
        local_name = decl_type.split("_", 1)[0]
        if provider_attr is not None:
            path = traversal(provider_attr.node)
            local_name = path[0] if path else local_name
        return self.providers.get(local_name, f"hashicorp/{local_name}")

    def check_decl(self, decl: Decl) -> None:
        ctx = Context(decl.file, decl.address, "", [{}])
        source = self.schema_source(decl.type, decl.attrs.get("provider"))
        schema = self.schemas.get(source)
        if "provider" in decl.attrs:
            self.check_provider_ref(ctx, decl.attrs["provider"])
        if schema is None:
            self.fail(ctx, decl.block.line, f'no schema for provider {source} (pin one in infra/provider-schemas.txt)')
            return
        kinds = "resources" if decl.kind == "resource" else "data_sources"
        block = schema[kinds].get(decl.type)
        label = f"{source} {schema['version']}"
        if block is None:
            word = "resource" if decl.kind == "resource" else "data source"
            self.fail(ctx, decl.block.line, f'{label} has no {word} type "{decl.type}"{self.elsewhere(decl, kinds, source)}')
            return
        self.report.checked.append(decl.address)
        ctx.label = f"{label} {decl.type}"
        ctx.envs, ctx.bound = self.instance_envs(decl, ctx)
        self.check_body(block, decl.block.body, ctx, top=decl.kind)

    def elsewhere(self, decl: Decl, kinds: str, source: str) -> str:
        """A hint for an unknown type: the pinned provider that has it (google-beta), or a close name."""
        for local_name, other in self.providers.items():
            schema = self.schemas.get(other)
            if other != source and schema and decl.type in schema[kinds]:
                return f" ({other} {schema['version']} has it: set provider = {local_name})"
        return close(decl.type, self.schemas[source][kinds])

    def instance_envs(self, decl: Decl, ctx: Context) -> tuple[list[dict[str, Any]], frozenset[str]]:
        if "count" in decl.attrs and "for_each" in decl.attrs:
            self.fail(ctx, decl.attrs["count"].line, "count and for_each cannot both be set")
        if "count" in decl.attrs:
            return [{}], frozenset({"count"})
        if "for_each" not in decl.attrs:
            return [{}], frozenset()
        items = for_each_items(self.ev.ev(decl.attrs["for_each"].node, {}))
        if items is None:
            return [{"each": UNKNOWN}], frozenset({"each"})
        return [{"each": {"key": k, "value": v}} for k, v in items][:MAX_ENVS] or [{"each": UNKNOWN}], frozenset({"each"})

    def check_provider(self, file: str, block: Block) -> None:
        name = block.labels[0] if block.labels else "?"
        ctx = Context(file, f'provider "{name}"', "", [{}])
        source = self.providers.get(name, f"hashicorp/{name}")
        schema = self.schemas.get(source)
        if schema is None:
            self.fail(ctx, block.line, f"no schema for provider {source} (pin one in infra/provider-schemas.txt)")
            return
        self.report.checked.append(f"provider.{name}")
        ctx.label = f"{source} {schema['version']} provider"
        self.check_body(schema["provider"], block.body, ctx, top="provider")

    def check_provider_ref(self, ctx: Context, attr: Attr) -> None:
        path = traversal(attr.node)
        if path is None or path[0] not in self.providers:
            self.fail(ctx, attr.line, f"provider = {path[0] if path else '?'}: not a provider in required_providers ({sorted(self.providers)})")

    # -------------------------------------------------------------- bodies
    def check_body(self, schema: dict[str, Any], body: Tree | None, ctx: Context, top: str | None = None) -> None:
        attrs, blocks = members(body)
        meta_args = RESOURCE_META_ARGS if top in ("resource", "data") else {"alias"} if top == "provider" else set()
        meta_blocks = RESOURCE_META_BLOCKS if top == "resource" else DATA_META_BLOCKS if top == "data" else set()
        for attr in attrs:
            if attr.name in meta_args:
                self.check_meta(attr, ctx)
            else:
                self.check_argument(schema, attr, ctx)
        counts: dict[str, int] = {}
        for block in blocks:
            if block.type in meta_blocks:
                self.check_meta_block(schema, block, ctx)
            elif block.type == "dynamic":
                self.check_dynamic(schema, block, ctx)
            else:
                counts[block.type] = counts.get(block.type, 0) + 1
                self.check_block(schema, block, ctx, counts[block.type])
        self.check_required(schema, attrs, blocks, ctx, body)

    def check_argument(self, schema: dict[str, Any], attr: Attr, ctx: Context) -> None:
        spec = schema["attributes"].get(attr.name)
        if spec is None:
            if attr.name in schema["blocks"]:
                self.fail(ctx, attr.line, f'"{ctx.at(attr.name)}" is a block in {ctx.label}, not an argument: write {attr.name} {{ ... }}')
            else:
                self.fail(ctx, attr.line, f'{ctx.label} has no argument "{ctx.at(attr.name)}"{close(attr.name, schema["attributes"])}')
            self.refs(attr.node, ctx)
            return
        if spec["mode"] == "computed":
            self.fail(ctx, attr.line, f'"{ctx.at(attr.name)}" is computed by the provider ({ctx.label}): it cannot be set')
        if spec["mode"] == "required" and self.ev.ev(attr.node, {}) is None:
            self.fail(ctx, attr.line, f'required argument "{ctx.at(attr.name)}" is set to null')
        if "enum" in spec:
            self.check_enum(spec["enum"], attr, ctx)
        self.refs(attr.node, ctx)

    def check_block(self, schema: dict[str, Any], block: Block, ctx: Context, nth: int) -> None:
        spec = schema["blocks"].get(block.type)
        here = ctx.at(block.type)
        if spec is None:
            if block.type in schema["attributes"]:
                self.fail(ctx, block.line, f'"{here}" is an argument in {ctx.label}, not a block: write {block.type} = ...')
            else:
                self.fail(ctx, block.line, f'{ctx.label} has no block "{here}"{close(block.type, schema["blocks"])}')
            self.refs_in_body(block.body, ctx)
            return
        if spec.get("computed"):
            self.fail(ctx, block.line, f'"{here}" is computed by the provider ({ctx.label}): it cannot be set')
        if spec["max_one"] and nth == 2:
            self.fail(ctx, block.line, f'{ctx.label} allows at most one "{here}" block')
        self.check_body(spec, block.body, _inner(ctx, block.type))

    def check_dynamic(self, schema: dict[str, Any], block: Block, ctx: Context) -> None:
        name = block.labels[0] if block.labels else "?"
        spec = schema["blocks"].get(name)
        attrs, inner = members(block.body)
        by_name = {a.name: a for a in attrs}
        for attr in attrs:
            if attr.name not in DYNAMIC_ARGS:
                self.fail(ctx, attr.line, f'dynamic "{ctx.at(name)}": unexpected argument "{attr.name}" (for_each, iterator, labels, content)')
            elif attr.name != "iterator":
                self.refs(attr.node, ctx)
        contents = [b for b in inner if b.type == "content"]
        iterator = name
        if "iterator" in by_name:
            path = traversal(by_name["iterator"].node)
            iterator = path[0] if path else name
        if "for_each" not in by_name or len(contents) != 1 or len(inner) != 1:
            self.fail(ctx, block.line, f'dynamic "{ctx.at(name)}" needs a for_each and exactly one content block')
        if spec is None:
            self.check_block(schema, Block(name, (), None, block.line), ctx, 1)
            for content in contents:
                self.refs_in_body(content.body, _inner(ctx, name, bound=ctx.bound | {iterator}))
            return
        envs = self.dynamic_envs(by_name.get("for_each"), iterator, ctx) if "for_each" in by_name else [{iterator: UNKNOWN}]
        inner_ctx = _inner(ctx, name, envs=envs, bound=ctx.bound | {iterator})
        for content in contents:
            self.check_body(spec, content.body, inner_ctx)

    def dynamic_envs(self, for_each: Attr | None, iterator: str, ctx: Context) -> list[dict[str, Any]]:
        envs: list[dict[str, Any]] = []
        for env in ctx.envs:
            items = for_each_items(self.ev.ev(for_each.node, env)) if for_each else None
            if items is None:
                envs.append({**env, iterator: UNKNOWN})
            else:
                envs.extend({**env, iterator: {"key": k, "value": v}} for k, v in items)
        return envs[:MAX_ENVS]

    def check_required(self, schema: dict[str, Any], attrs: list[Attr], blocks: list[Block], ctx: Context, body: Tree | None) -> None:
        line = line_of(body) if body is not None else 0
        set_names = {a.name for a in attrs}
        for name, spec in schema["attributes"].items():
            if spec["mode"] == "required" and name not in set_names:
                self.fail(ctx, line, f'required argument "{ctx.at(name)}" is not set ({ctx.label})')
        plain = {b.type for b in blocks if b.type != "dynamic"}
        dynamic = {b.labels[0]: b for b in blocks if b.type == "dynamic" and b.labels}
        for name, spec in schema["blocks"].items():
            if not spec["required"] or name in plain:
                continue
            if name not in dynamic:
                self.fail(ctx, line, f'required block "{ctx.at(name)}" is missing ({ctx.label})')
                continue
            self.check_required_dynamic(name, dynamic[name], ctx)

    def check_required_dynamic(self, name: str, block: Block, ctx: Context) -> None:
        for_each = next((a for a in members(block.body)[0] if a.name == "for_each"), None)
        if for_each is None:
            return  # reported by check_dynamic
        empty, unknown = [], 0
        for env in ctx.envs:
            items = for_each_items(self.ev.ev(for_each.node, env))
            if items is None:
                unknown += 1
            elif not items:
                empty.append(env.get("each", {}).get("key") if isinstance(env.get("each"), dict) else None)
        if empty:
            keys = ", ".join(repr(k) for k in empty if k is not None)
            self.fail(ctx, block.line, f'required block "{ctx.at(name)}": dynamic "{name}" for_each is empty' + (f" for each.key {keys}" if keys else ""))
        if unknown:
            self.report.unverified.append(
                Finding(ctx.file, block.line, ctx.where, f'required block "{ctx.at(name)}" is given only by dynamic "{name}", whose for_each cannot be evaluated offline')
            )

    def check_enum(self, allowed: list[str], attr: Attr, ctx: Context) -> None:
        for value in sorted(self.candidates(attr.node, ctx)):
            if value not in allowed:
                self.fail(ctx, attr.line, f'"{ctx.at(attr.name)}" = "{value}" is not one of the values {ctx.label} allows: {allowed}')

    def candidates(self, node: Tree, ctx: Context) -> set[str]:
        """Every string value the expression can be known to take."""
        node = unwrap(node)
        if node.data == "conditional":
            _, yes, no = kids(node)
            return self.candidates(yes, ctx) | self.candidates(no, ctx)
        path = traversal(node)
        if path and path[0] == "var" and len(path[1]) == 1 and path[1][0].kind == "attr":
            return self.variable_values(path[1][0].name)
        values = {self.ev.ev(node, env) for env in ctx.envs}
        return {v for v in values if isinstance(v, str)}

    def variable_values(self, name: str) -> set[str]:
        """A variable's literal default, and the values a `contains([...], var.x)` validation admits."""
        if name not in self.module.variables:
            return set()
        attrs, blocks = members(self.module.variables[name][1].body)
        values = {self.ev.ev(a.node, {}) for a in attrs if a.name == "default"}
        for block in blocks:
            for attr in members(block.body)[0] if block.type == "validation" else []:
                values |= self.validation_values(attr.node, name) if attr.name == "condition" else set()
        return {v for v in values if isinstance(v, str)}

    def validation_values(self, node: Tree, name: str) -> set[Any]:
        node = unwrap(node)
        if node.data != "function_call" or name_of(kids(node)[0]) != "contains":
            return set()
        args = kids(kids(node)[1]) if len(kids(node)) > 1 else []
        target = traversal(args[1]) if len(args) == 2 else None
        if target != ("var", [Step("attr", name)]):
            return set()
        listed = self.ev.ev(args[0], {})
        return set(listed) if isinstance(listed, list) and all(isinstance(v, str) for v in listed) else set()

    # -------------------------------------------------------------- meta-arguments
    def check_meta(self, attr: Attr, ctx: Context) -> None:
        if attr.name == "depends_on":
            self.check_depends_on(attr, ctx)
        elif attr.name != "provider":
            self.refs(attr.node, Context(ctx.file, ctx.where, ctx.label, [{}]))

    def check_depends_on(self, attr: Attr, ctx: Context) -> None:
        node = unwrap(attr.node)
        items = kids(node) if node.data == "tuple" else [node]
        for item in items:
            path = traversal(item)
            whole = path is not None and (len(path[1]) == 1 if path[0] != "data" else len(path[1]) == 2)
            if not whole:
                self.fail(ctx, attr.line, "depends_on lists whole resources or data sources (TYPE.NAME), not attributes or expressions")
            self.refs(item, ctx)

    def check_meta_block(self, schema: dict[str, Any], block: Block, ctx: Context) -> None:
        if block.type != "lifecycle":
            self.refs_in_body(block.body, _inner(ctx, block.type, bound=ctx.bound | {"self"}))
            return
        attrs, blocks = members(block.body)
        for attr in attrs:
            if attr.name not in LIFECYCLE_ARGS:
                self.fail(ctx, attr.line, f'lifecycle has no argument "{attr.name}"{close(attr.name, LIFECYCLE_ARGS)}')
            elif attr.name == "ignore_changes":
                self.check_ignore_changes(schema, attr, ctx)
            else:
                self.refs(attr.node, ctx)
        for inner in blocks:
            if inner.type not in LIFECYCLE_BLOCKS:
                self.fail(ctx, inner.line, f'lifecycle has no block "{inner.type}"')
            self.refs_in_body(inner.body, _inner(ctx, "lifecycle", bound=ctx.bound | {"self"}))

    def check_ignore_changes(self, schema: dict[str, Any], attr: Attr, ctx: Context) -> None:
        node = unwrap(attr.node)
        if node.data == "identifier" and name_of(node) == "all":
            return
        for item in kids(node) if node.data == "tuple" else [node]:
            path = traversal(item)
            if path is None:
                self.fail(ctx, attr.line, "lifecycle.ignore_changes lists argument names")
                continue
            problem = self.attribute_path(schema, [Step("attr", path[0]), *path[1]])
            if problem:
                self.fail(ctx, attr.line, f"lifecycle.ignore_changes: {ctx.label} {problem}")

    # -------------------------------------------------------------- references
    def refs_in_body(self, body: Tree | None, ctx: Context) -> None:
        attrs, blocks = members(body)
        for attr in attrs:
            self.refs(attr.node, ctx)
        for block in blocks:
            self.refs_in_body(block.body, ctx)

    def refs(self, node: Tree, ctx: Context, bound: dict[str, Any] | None = None) -> None:
        """Check every reference in an expression; `bound` maps for-expression variables to the
        schema of the resource instance they stand for (or None)."""
        for path, line, scope in self.references(node, dict(bound or {})):
            self.check_reference(path, line, scope, ctx)

    def check_reference(self, path: tuple[str, list[Step]], line: int, scope: dict[str, Any], ctx: Context) -> None:
        root, steps = path
        if root in scope:
            self.check_bound(scope[root], steps, line, ctx)
        elif root in ctx.bound:
            if root in ("each", "count") and (not steps or steps[0].name not in ({"key", "value"} if root == "each" else {"index"})):
                self.fail(ctx, line, f"{root}.{steps[0].name if steps else ''}: {root} has only " + ("key and value" if root == "each" else "index"))
        elif root in ("var", "local"):
            self.check_named(root, steps, line, ctx)
        elif root in ("each", "count", "self"):
            self.fail(ctx, line, f"{root}.{steps[0].name if steps else ''} is used where there is no {'for_each' if root == 'each' else root}")
        elif root == "path" or root == "terraform":
            if not steps or (root == "path" and steps[0].name not in PATH_ATTRS):
                self.fail(ctx, line, f"{root}.{steps[0].name if steps else ''} is not a Terraform value")
        elif root == "module":
            if not steps or steps[0].name not in self.module.modules:
                self.fail(ctx, line, f"module.{steps[0].name if steps else ''} is not declared")
        elif root == "data":
            self.check_resource_ref("data", steps[1:] if steps else [], steps[0].name if steps else "", line, ctx)
        else:
            self.check_resource_ref("resource", steps, root, line, ctx)

    def check_named(self, root: str, steps: list[Step], line: int, ctx: Context) -> None:
        declared = self.module.variables if root == "var" else self.module.locals
        name = steps[0].name if steps and steps[0].kind == "attr" else ""
        if name not in declared:
            self.fail(ctx, line, f"{root}.{name} is not declared{close(name, declared)}")

    def check_bound(self, instance: dict[str, Any] | None, steps: list[Step], line: int, ctx: Context) -> None:
        if instance is None:
            return
        problem = self.attribute_path(instance["schema"], steps)
        if problem:
            self.fail(ctx, line, f"reference {instance['address']}[...]{_render(steps)}: {instance['type']} {problem}")

    def check_resource_ref(self, kind: str, steps: list[Step], rtype: str, line: int, ctx: Context) -> None:
        table = self.module.resources if kind == "resource" else self.module.data
        prefix = "data." if kind == "data" else ""
        if not steps or steps[0].kind != "attr":
            self.fail(ctx, line, f'"{prefix}{rtype}" is not a value: a reference is {prefix}TYPE.NAME[.attribute]')
            return
        name, rest = steps[0].name, steps[1:]
        address = f"{prefix}{rtype}.{name}"
        decl = table.get((rtype, name))
        if decl is None:
            known = [f"{t}.{n}" for t, n in table]
            word = "resource" if kind == "resource" else "data source"
            self.fail(ctx, line, f"reference {address}{_render(rest)}: no {word} {address} in infra/{close(f'{rtype}.{name}', known)}")
            return
        if rest and decl.keyed and rest[0].kind == "attr":
            self.fail(ctx, line, f"reference {address}{_render(rest)}: {address} has {decl.keyed}, so an attribute needs an instance key: {address}[...].{rest[0].name}")
            return
        if rest and not decl.keyed and rest[0].kind == "index":
            self.fail(ctx, line, f"reference {address}{_render(rest)}: {address} has no count or for_each, so it takes no instance key")
            return
        schema = self.type_schema(decl)
        if schema is None or not rest:
            return
        problem = self.attribute_path(schema, rest[1:] if decl.keyed else rest)
        if problem:
            self.fail(ctx, line, f"reference {address}{_render(rest)}: {decl.type} {problem}")

    def type_schema(self, decl: Decl) -> dict[str, Any] | None:
        schema = self.schemas.get(self.schema_source(decl.type, decl.attrs.get("provider")))
        block: dict[str, Any] | None = schema["resources" if decl.kind == "resource" else "data_sources"].get(decl.type) if schema else None
        return block

    @staticmethod
    def attribute_path(schema: dict[str, Any], steps: list[Step]) -> str | None:
        """None if the steps name a real attribute path in the block schema, else what is wrong."""
        block = schema
        for step in steps:
            if step.kind != "attr":
                continue  # an index or splat over a list of blocks
            if step.name in block["attributes"]:
                return None  # a value: what it holds (a map, an object) is not in the schema
            if step.name not in block["blocks"]:
                options = [*block["attributes"], *block["blocks"]]
                return f'has no attribute "{step.name}"{close(step.name, options)}'
            block = block["blocks"][step.name]
        return None

    def instance_binding(self, path: tuple[str, list[Step]] | None) -> dict[str, Any] | None:
        """What the element variable of `for x in <path>` stands for, when <path> is a whole resource."""
        if path is None:
            return None
        root, steps = path
        kind, steps = ("data", steps[1:]) if root == "data" and steps else ("resource", steps)
        rtype = steps[0].name if root == "data" and path[1] else root
        if len(steps) != 1 or steps[0].kind != "attr":
            return None
        decl = (self.module.data if kind == "data" else self.module.resources).get((rtype, steps[0].name))
        schema = self.type_schema(decl) if decl and decl.keyed else None
        return {"schema": schema, "type": decl.type, "address": decl.address} if decl and schema else None

    def references(self, node: Tree, scope: dict[str, Any]) -> Iterator[tuple[tuple[str, list[Step]], int, dict[str, Any]]]:
        """Every traversal in an expression, with the for-expression variables in scope at it."""
        node = unwrap(node) if node.data == "expr_term" else node
        path = traversal(node)
        if path is not None:
            yield path, line_of(node), scope
            for step in path[1]:
                if step.index is not None:
                    yield from self.references(step.index, scope)
            return
        if node.data in ("for_tuple_expr", "for_object_expr"):
            yield from self.for_references(node, scope)
            return
        if node.data.startswith("heredoc_template"):
            yield from self.heredoc_references(node, scope)
            return
        parts = kids(node)
        if node.data == "function_call":
            parts = parts[1:]
        elif node.data == "object_elem_key" and unwrap(parts[0]).data == "identifier":
            return  # a bare key is a name, not a reference
        for part in parts:
            yield from self.references(part, scope)

    def for_references(self, node: Tree, scope: dict[str, Any]) -> Iterator[tuple[tuple[str, list[Step]], int, dict[str, Any]]]:
        intro, *body = kids(node)
        names = [name_of(n) for n in kids(intro) if n.data == "identifier"]
        collection = kids(intro)[-1]
        yield from self.references(collection, scope)
        element = self.instance_binding(traversal(collection))
        inner = {**scope, **dict.fromkeys(names)}
        inner[names[-1]] = element
        for part in body:
            yield from self.references(part, inner)

    def heredoc_references(self, node: Tree, scope: dict[str, Any]) -> Iterator[tuple[tuple[str, list[Step]], int, dict[str, Any]]]:
        import hcl2

        text = "".join(str(t) for t in node.children if isinstance(t, Token))
        for match in _HEREDOC_INTERP.finditer(text):
            tree = hcl2.parses_to_tree(f"x = {match.group(1)}\n")
            for attr in members(kids(tree)[0])[0]:
                for path, _, inner in self.references(attr.node, scope):
                    yield path, line_of(node), inner


def _inner(ctx: Context, name: str, envs: list[dict[str, Any]] | None = None, bound: frozenset[str] | None = None) -> Context:
    return Context(ctx.file, ctx.where, ctx.label, envs if envs is not None else ctx.envs, bound if bound is not None else ctx.bound, (*ctx.path, name))


def _render(steps: list[Step]) -> str:
    return "".join(f".{s.name}" if s.kind == "attr" else "[*]" if s.kind == "splat" else "[...]" for s in steps)


def check(directory: Path, schemas: dict[str, dict[str, Any]]) -> Report:
    """Check every .tf file in directory against the provider schemas (dev.tf_schema.load())."""
    return Checker(Module.load(directory), schemas).run()
