"""A JSON Schema (2020-12) checker compiled to closures once, then cheap per request, naming the first wrong field.

Why our own: ``benchmarks/validation.py`` measured one check of the iris request (rows of 4 numbers):

    validator                       valid     invalid   its message
    vci.validator (this)            1.07 us   2.19 us   $[0][3]: expected number, got string
    jsonschema 4.26 (+ best_match)  18.7 us   45.1 us   '0.2' is not of type 'number'
    fastjsonschema 2.22             0.63 us   3.07 us   data[0][3] must be number
    jsonschema-rs 0.60 (Rust)       0.16 us   1.90 us   "0.2" is not of type "number"

Every one is small beside a request's ~180 us in the server (with this one on, /predict at 8
connections kept 0.995x and 1.05x of its throughput without in two runs: noise), so the
choice is the rest: this one names the path in the words the 422 promises, adds no package to every
image (the server imports the standard library only) and generates no code from a user's schema.
jsonschema is the reference it is tested against (tests/test_validator.py). It checks the keywords
vci infers and pydantic emits: ``type``,
``enum``, ``const``, ``properties``, ``required``, ``additionalProperties``, ``patternProperties``,
``min/maxProperties``, ``items``, ``prefixItems``, ``min/maxItems``, ``uniqueItems``, ``minimum``,
``maximum``, ``exclusiveMinimum/Maximum``, ``multipleOf``, ``min/maxLength``, ``pattern``, ``anyOf``,
``oneOf``, ``allOf``, ``not`` and local ``$ref`` (``#/$defs/...``, ``#/definitions/...``, ``#``).
Annotations (``title``, ``format``, ``default``, ``examples``, ...) are ignored, as the dialect says;
the validation keywords it does not implement (``if``, ``contains``, ``dependentRequired``, ...) are
refused by :func:`schema_problem` when a schema is logged, never silently skipped.

A problem reads ``$[0][3]: expected number, got string``: the path of the first wrong value (``$`` the
whole input, ``[i]`` an item, ``.key`` or ``["key"]`` a member), then what was expected.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

Failure = tuple[list[str], str]  # (path segments innermost first, what was expected)
Check = Callable[[Any], "Failure | None"]
NAMES = {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}
TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")
UNSUPPORTED: tuple[str, ...] = ("if", "then", "else", "contains", "minContains", "maxContains")
UNSUPPORTED += ("dependentRequired", "dependentSchemas")
UNSUPPORTED += ("propertyNames", "unevaluatedItems", "unevaluatedProperties", "$dynamicRef")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def json_type(value) -> str:
    return "null" if value is None else NAMES.get(type(value), type(value).__name__)


def _is(kind: str) -> Callable[[Any], bool]:
    if kind == "number":
        return lambda v: type(v) is int or type(v) is float
    if kind == "integer":
        return lambda v: type(v) is int or (type(v) is float and v.is_integer())
    if kind == "null":
        return lambda v: v is None
    exact = {"boolean": bool, "string": str, "array": list, "object": dict}[kind]
    return lambda v: type(v) is exact


class Mismatch(str):
    """The message of a value of the wrong type, ``expected array or object, got string``, knowing the types."""

    wanted: list[str]

    def __new__(cls, wanted: list[str], value) -> Mismatch:
        self = super().__new__(cls, f"expected {' or '.join(wanted)}, got {json_type(value)}")
        self.wanted = wanted
        return self


def member(key: str) -> str:
    return f".{key}" if IDENTIFIER.match(key) else f"[{json.dumps(key)}]"


class Validator:
    """``Validator(schema).problem(value)``: None when ``value`` matches, else where and why it does not."""

    def __init__(self, schema: dict | bool):
        self.root = schema
        self._refs: dict[str, Check | None] = {}
        self._check = self._compile(schema)

    def problem(self, value) -> str | None:
        failure = self._check(value) if self._check is not None else None
        if failure is None:
            return None
        path, message = failure
        return "$" + "".join(reversed(path)) + ": " + message

    # -- compiling ----------------------------------------------------------------------------------------
    def _compile(self, schema) -> Check | None:
        """One schema -> a check, or None when it accepts everything."""
        if schema is True or schema == {}:
            return None
        if schema is False:
            return lambda v: ([], "no value is allowed here")
        checks = [c for c in self._parts(schema) if c is not None]
        if not checks:
            return None
        if len(checks) == 1:
            return checks[0]

        def all_of(value):
            for check in checks:
                failure = check(value)
                if failure is not None:
                    return failure
            return None

        return all_of

    def _parts(self, s: dict) -> list[Check | None]:
        parts = [self._type(s.get("type")), self._enum(s)]
        parts += [self._numbers(s), self._strings(s), self._arrays(s), self._objects(s)]
        parts += [self._any_of(s.get("anyOf"), "anyOf"), self._any_of(s.get("oneOf"), "oneOf")]
        parts += [self._compile(sub) for sub in s.get("allOf", [])]
        parts += [self._not(s["not"]) if "not" in s else None, self._ref(s["$ref"]) if "$ref" in s else None]
        return parts

    def _type(self, kind) -> Check | None:
        if kind is None:
            return None
        kinds = [kind] if isinstance(kind, str) else list(kind)
        tests = [_is(k) for k in kinds]
        if len(tests) == 1:
            test = tests[0]
            return lambda v: None if test(v) else ([], Mismatch(kinds, v))
        return lambda v: None if any(t(v) for t in tests) else ([], Mismatch(kinds, v))

    def _enum(self, s: dict) -> Check | None:
        if "const" in s:
            const = s["const"]
            return lambda v: None if _equal(v, const) else ([], f"expected {json.dumps(const)}, got {_shown(v)}")
        if "enum" not in s:
            return None
        options = s["enum"]
        shown = ", ".join(json.dumps(o) for o in options[:10])

        def enum(v):
            return None if any(_equal(v, o) for o in options) else ([], f"expected one of {shown}, got {_shown(v)}")

        return enum

    def _numbers(self, s: dict) -> Check | None:
        bounds = [(k, s[k]) for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") if k in s]
        step = s.get("multipleOf")
        if not bounds and step is None:
            return None
        tests = {
            "minimum": (lambda v, b: v >= b, "at least"),
            "maximum": (lambda v, b: v <= b, "at most"),
            "exclusiveMinimum": (lambda v, b: v > b, "more than"),
            "exclusiveMaximum": (lambda v, b: v < b, "less than"),
        }

        def numbers(v):
            if type(v) is not int and type(v) is not float:
                return None
            for key, bound in bounds:
                test, words = tests[key]
                if not test(v, bound):
                    return [], f"expected a number {words} {bound}, got {v}"
            if step is not None and not _multiple(v, step):
                return [], f"expected a multiple of {step}, got {v}"
            return None

        return numbers

    def _strings(self, s: dict) -> Check | None:
        low, high, pattern = s.get("minLength"), s.get("maxLength"), s.get("pattern")
        if low is None and high is None and pattern is None:
            return None
        regex = re.compile(pattern) if pattern is not None else None

        def strings(v):
            if type(v) is not str:
                return None
            if low is not None and len(v) < low:
                return [], f"expected a string of at least {low} characters, got {len(v)}"
            if high is not None and len(v) > high:
                return [], f"expected a string of at most {high} characters, got {len(v)}"
            if regex is not None and not regex.search(v):
                return [], f"expected a string matching {pattern}, got {_shown(v)}"
            return None

        return strings

    def _arrays(self, s: dict) -> Check | None:
        item = self._compile(s["items"]) if "items" in s else None
        prefix = [self._compile(p) for p in s.get("prefixItems", [])]
        low, high, unique = s.get("minItems"), s.get("maxItems"), s.get("uniqueItems", False)
        if item is None and not prefix and low is None and high is None and not unique:
            return None
        start = len(prefix)

        def arrays(v):
            if type(v) is not list:
                return None
            n = len(v)
            if (low is not None and n < low) or (high is not None and n > high):
                return [], _count_message(low, high, n, "items")
            for i, check in enumerate(prefix[:n]):
                if check is not None and (failure := check(v[i])) is not None:
                    failure[0].append(f"[{i}]")
                    return failure
            if item is not None:
                for i in range(start, n):
                    failure = item(v[i])
                    if failure is not None:
                        failure[0].append(f"[{i}]")
                        return failure
            if unique and len({_key(x) for x in v}) != n:
                return [], "expected unique items"
            return None

        return arrays

    def _objects(self, s: dict) -> Check | None:
        props = {k: self._compile(sub) for k, sub in (s.get("properties") or {}).items()}
        patterns = [(re.compile(p), self._compile(sub)) for p, sub in (s.get("patternProperties") or {}).items()]
        extra_schema = s.get("additionalProperties", True)
        extra = self._compile(extra_schema) if extra_schema is not False else None
        required, low, high = s.get("required", []), s.get("minProperties"), s.get("maxProperties")
        if not props and not patterns and extra_schema is True and not required and low is None and high is None:
            return None
        checked = [(k, c) for k, c in props.items() if c is not None]

        def objects(v):
            if type(v) is not dict:
                return None
            for key in required:
                if key not in v:
                    return [], f"missing required key {json.dumps(key)}"
            if (low is not None and len(v) < low) or (high is not None and len(v) > high):
                return [], _count_message(low, high, len(v), "keys")
            for key, check in checked:
                if key in v and (failure := check(v[key])) is not None:
                    failure[0].append(member(key))
                    return failure
            if patterns or extra_schema is not True:
                return _others(v, props, patterns, extra_schema, extra)
            return None

        return objects

    def _any_of(self, branches, keyword: str) -> Check | None:
        if branches is None:
            return None
        checks = [self._compile(b) for b in branches]
        if any(c is None for c in checks) and keyword == "anyOf":
            return None
        one = keyword == "oneOf"

        def first_of(v):  # anyOf: done at the first branch that accepts (the hot path: a row, or rows)
            failures = []
            for check in checks:
                failure = check(v)
                if failure is None:
                    return None
                failures.append(failure)
            return _best(failures, v)

        if not one:
            return first_of

        def any_of(v):
            failures = [c(v) if c is not None else None for c in checks]
            passed = sum(f is None for f in failures)
            if passed == 1 or (passed > 1 and not one):
                return None
            if passed > 1:
                return [], f"matches {passed} of the oneOf schemas, not exactly one"
            return _best(failures, v)

        return any_of

    def _not(self, schema) -> Check:
        check = self._compile(schema)
        return lambda v: ([], "matches a schema it must not (not)") if check is None or check(v) is None else None

    def _ref(self, ref: str) -> Check:
        def by_ref(v):
            if ref not in self._refs:
                self._refs[ref] = None  # a recursive reference meets itself while it compiles: it accepts
                self._refs[ref] = self._compile(resolve(self.root, ref))
            check = self._refs[ref]
            return check(v) if check is not None else None

        return by_ref


def _others(v: dict, props: dict, patterns: list, extra_schema, extra: Check | None) -> Failure | None:
    """The keys ``properties`` does not name: each checked by the patterns it matches, else by
    ``additionalProperties`` (False: refused)."""
    for key, value in v.items():
        if key in props:
            continue
        matched = False
        for regex, check in patterns:
            if regex.search(key):
                matched = True
                if check is not None and (failure := check(value)) is not None:
                    failure[0].append(member(key))
                    return failure
        if matched or extra_schema is True:
            continue
        if extra_schema is False:
            return [], f"unexpected key {json.dumps(key)}"
        if extra is not None and (failure := extra(value)) is not None:
            failure[0].append(member(key))
            return failure
    return None


def _best(failures: list, value) -> Failure:
    """The failure of the branch that got furthest (deepest path); when every branch failed on the value's
    type itself, one message naming every type expected."""
    found = [f for f in failures if f is not None]
    deepest = max(found, key=lambda f: (len(f[0]), not isinstance(f[1], Mismatch)))
    if all(_type_mismatch(f) for f in found):
        wanted = [kind for _, message in found for kind in message.wanted]
        return [], Mismatch(list(dict.fromkeys(wanted)), value)
    return deepest


def _type_mismatch(failure: Failure) -> bool:
    """Whether a failure is the value's own type (``expected array, got string``), not something inside it."""
    return not failure[0] and isinstance(failure[1], Mismatch)


def _count_message(low, high, n: int, what: str) -> str:
    if low is not None and low == high:
        return f"expected {low} {what}, got {n}"
    if low is not None and n < low:
        return f"expected at least {low} {what}, got {n}"
    return f"expected at most {high} {what}, got {n}"


def _equal(a, b) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1 (at any depth)."""
    return _key(a) == _key(b)


def _key(value):
    """A hashable form of a JSON value under JSON equality (vs Python's, where True == 1)."""
    if isinstance(value, bool) or value is None:
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value)  # 1 and 1.0 hash and compare equal
    if isinstance(value, list):
        return ("a", tuple(_key(v) for v in value))
    if isinstance(value, dict):
        return ("o", tuple(sorted((k, _key(v)) for k, v in value.items())))
    return ("s", value)


def _multiple(v, step) -> bool:
    quotient = v / step
    return math.isfinite(quotient) and abs(quotient - round(quotient)) < 1e-9


def _shown(v) -> str:
    text = json.dumps(v) if isinstance(v, (str, int, float, bool, type(None))) else json_type(v)
    return text if len(text) <= 40 else text[:37] + "..."


def resolve(root, ref: str):
    """The subschema a local ``$ref`` names (``#``, ``#/$defs/X``, ``#/definitions/X``, JSON-pointer escapes)."""
    if not ref.startswith("#"):
        raise ValueError(f"$ref {ref!r} is not local to the schema")
    node = root
    for part in [p for p in ref[1:].split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise ValueError(f"$ref {ref!r} names nothing in the schema")
        node = node[part]
    return node


def schema_problem(schema, root=None, where: str = "$") -> str | None:
    """What makes ``schema`` one this checker cannot apply as written (first problem), or None."""
    root = schema if root is None else root
    if isinstance(schema, bool):
        return None
    if not isinstance(schema, dict):
        return f"{where} is a {type(schema).__name__}, not a schema (an object or a boolean)"
    for keyword in UNSUPPORTED:
        if keyword in schema:
            return f"{where} uses {keyword!r}, which vci's validator does not check"
    kinds = schema.get("type", [])
    for kind in [kinds] if isinstance(kinds, str) else kinds:
        if kind not in TYPES:
            return f"{where}.type {kind!r} is not a JSON type ({', '.join(TYPES)})"
    if "$ref" in schema:
        try:
            resolve(root, schema["$ref"])
        except ValueError as exc:
            return f"{where}: {exc}"
    for key, sub in _subschemas(schema):
        problem = schema_problem(sub, root, f"{where}.{key}")
        if problem:
            return problem
    return _pattern_problem(schema, where)


def _subschemas(schema: dict):
    for key in ("items", "not", "additionalProperties"):
        if key in schema:
            yield key, schema[key]
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for n, sub in enumerate(schema.get(key, [])):
            yield f"{key}[{n}]", sub
    for key in ("properties", "patternProperties", "$defs", "definitions"):
        for name, sub in (schema.get(key) or {}).items():
            yield f"{key}.{name}", sub


def _pattern_problem(schema: dict, where: str) -> str | None:
    for pattern in [schema.get("pattern"), *(schema.get("patternProperties") or {})]:
        if pattern is None:
            continue
        try:
            re.compile(pattern)
        except re.error as exc:
            return f"{where}: pattern {pattern!r} is not a regular expression: {exc}"
    return None
