"""GitHub's REST description (a trimmed copy): which routes exist, and request validation."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]

SPEC_PATH = Path(__file__).with_name("rest-subset.json")


@dataclass(frozen=True)
class Route:
    """A path template of the description and the values its variables took."""

    template: str
    params: dict[str, str]


def _template_regex(template: str) -> re.Pattern[str]:
    def var(match: re.Match[str]) -> str:
        name = match.group(1)
        # The contents API takes a path with slashes in it.
        return f"(?P<{name}>.+)" if name == "path" else f"(?P<{name}>[^/]+)"

    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", var, re.escape(template)) + "$")


class RestSpec:
    """The operations GitHub documents, with their parameters and request-body schemas."""

    def __init__(self, path: Path = SPEC_PATH) -> None:
        self.doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        self._emulated = self._compile(self.doc["paths"])
        self._all = self._compile(self.doc["x-all-operations"]["paths"])

    @staticmethod
    def _compile(paths: dict[str, Any]) -> list[tuple[str, re.Pattern[str], set[str]]]:
        out = [(t, _template_regex(t), {m.upper() for m in ops}) for t, ops in paths.items()]
        # Literal segments win over variables: /issues/comments/{id} before /issues/{number}.
        out.sort(key=lambda item: (-item[0].count("/"), item[0].count("{")))
        return out

    def match(self, method: str, path: str) -> Route | None:
        """The emulated operation for this request, if the description has it."""
        return self._find(self._emulated, method, path)

    def exists_anywhere(self, method: str, path: str) -> bool:
        """True when the full api.github.com description has this operation."""
        return self._find(self._all, method, path) is not None

    @staticmethod
    def _find(table: list[tuple[str, re.Pattern[str], set[str]]], method: str, path: str) -> Route | None:
        for template, regex, methods in table:
            found = regex.match(path)
            if found and method.upper() in methods:
                return Route(template, found.groupdict())
        return None

    def operation(self, route: Route, method: str) -> dict[str, Any]:
        """The OpenAPI operation object."""
        op: dict[str, Any] = self.doc["paths"][route.template][method.lower()]
        return op

    def _parameters(self, op: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for param in op.get("parameters", []):
            if "$ref" in param:
                name = param["$ref"].rsplit("/", 1)[-1]
                param = self.doc["components"]["parameters"][name]
            out.append(param)
        return out

    def validate(
        self, route: Route, method: str, query: dict[str, str], body: bytes, content_type: str
    ) -> list[str]:
        """Every way this request departs from the description (empty when it conforms)."""
        op = self.operation(route, method)
        problems: list[str] = []
        params = self._parameters(op)
        for param in params:
            where, name = param["in"], param["name"]
            kind = param.get("schema", {}).get("type")
            value = route.params.get(name) if where == "path" else query.get(name)
            if where == "query" and value is None:
                continue
            if where == "path" and value is None:
                problems.append(f"path parameter {name} missing")
            elif kind == "integer" and value is not None and not re.fullmatch(r"-?\d+", value):
                problems.append(f"{where} parameter {name}={value!r} is not an integer")
        known_query = {p["name"] for p in params if p["in"] == "query"}
        for name in query:
            if name not in known_query:
                problems.append(f"query parameter {name!r} is not documented for {method} {route.template}")

        request_body = op.get("requestBody")
        if not body:
            if request_body and request_body.get("required"):
                problems.append(f"{method} {route.template} requires a JSON body")
            return problems
        if request_body is None:
            problems.append(f"{method} {route.template} takes no body")
            return problems
        if not content_type.startswith("application/json"):
            problems.append(f"body content-type {content_type!r} is not application/json")
        try:
            data = json.loads(body)
        except ValueError:
            return [*problems, "body is not valid JSON"]
        schema = request_body["content"]["application/json"]["schema"]
        validator = self._validator(route.template, method.lower(), json.dumps(schema, sort_keys=True))
        for error in validator.iter_errors(data):
            problems.append(f"body: {error.json_path}: {error.message}")
        return problems

    @cache  # noqa: B019 - one RestSpec per test session
    def _validator(self, template: str, method: str, schema_json: str) -> jsonschema.Draft7Validator:
        schema = copy.deepcopy(json.loads(schema_json))
        # The body schemas refer to '#/components/...'; carry the components along as the root.
        schema["components"] = self.doc["components"]
        return jsonschema.Draft7Validator(schema)


@cache
def load_spec() -> RestSpec:
    """The shared, parsed description."""
    return RestSpec()
