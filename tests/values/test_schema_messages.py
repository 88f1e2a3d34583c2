"""Every rule of the values' schema refuses with a sentence naming the key, the value and what is allowed.

The chart applies files/values.schema.json itself (templates/checks/_schema.tpl), because helm's
own schema validation prints only the validator's form. These tests walk the schema and, for every
constrained node (type, pattern, enum, const, minimum, maximum, minLength, maxLength, required,
additionalProperties, propertyNames, minItems, uniqueItems, minProperties, contains, not), build a
values file that breaks exactly that rule. The oracle is python-jsonschema's Draft 7 validator on
the same schema (what helm enforced before): each case must be refused by it, only at the case's
key. The chart must then refuse every case, with one sentence per problem, each naming the key and
saying what is allowed. Cases are packed into few renders (the chart lists every schema problem at
once), and the number of problems the chart counts must equal the oracle's for the same values.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.support import paths
from tests.support.helm import HelmError, helm_template

SCHEMA_FILE = paths.CHART_DIR / "files" / "values.schema.json"
# MLOPS_SCHEMA_ORACLE=<schema file>: generate the cases from another schema and use it as the
# oracle, for example the values.schema.json of an earlier commit, to prove that every value it
# refused is still refused (`git show <commit>:<path> > /tmp/old.json`).
SCHEMA = json.loads(Path(os.environ.get("MLOPS_SCHEMA_ORACLE") or SCHEMA_FILE).read_text())
DEFAULTS = yaml.safe_load((paths.CHART_DIR / "values.yaml").read_text())
ORACLE = jsonschema.Draft7Validator(SCHEMA)
# Keywords whose allowed form is not in the keyword itself: the node carries it in words.
WORDED = {"pattern": "patternErrorMessage", "not": "errorMessage", "oneOf": "errorMessage", "contains": "errorMessage"}
CONSTRAINTS = (
    "type", "pattern", "enum", "const", "minimum", "maximum", "minLength", "maxLength", "required",
    "additionalProperties", "propertyNames", "minItems", "uniqueItems", "minProperties", "contains", "not",
)
# Keywords the brief of every schema failure covers at least once each.
MUST_COVER = ("type", "pattern", "enum", "minimum", "maximum", "required", "additionalProperties")
SAMPLES: list[Any] = [
    "a", "x1", "models:/m@champion", "nvidia.com/gpu", "user@example.com", "1Gi", "/x", "http://x.example.com",
    "cpu", "RuntimeDefault", "In", "ALL", "nvcr.io/nvidia/pytorch:24.05-py3", "dgxa100.80g.1.norm", 1, 0, True, False,
]


def resolve(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def node_validator(node: Any) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator({**node, "definitions": SCHEMA["definitions"]} if isinstance(node, dict) else node)


def valid_sample(node: Any, depth: int = 0) -> tuple[bool, Any]:
    """A value the node accepts (default, const, enum, a minimal object), or (False, None)."""
    node = resolve(node)
    check = node_validator(node)
    candidates: list[Any] = []
    if isinstance(node, dict):
        if "default" in node:
            candidates.append(node["default"])
        if "const" in node:
            candidates.append(node["const"])
        candidates += list(node.get("enum", []))
        if "minimum" in node:
            candidates.append(node["minimum"])
        if depth < 6:
            parts = [node, *(resolve(p) for p in node.get("allOf", []) if isinstance(resolve(p), dict))]
            obj = {}
            ok = True
            for req in [r for part in parts for r in part.get("required", [])]:
                subs = [part["properties"][req] for part in parts if req in part.get("properties", {})]
                found, value = valid_sample(subs[0] if len(subs) == 1 else {"allOf": subs} if subs else True, depth + 1)
                ok = ok and found
                obj[req] = value
            if ok:
                candidates.append(obj)
            if node.get("minItems") and isinstance(node.get("items"), dict):
                found, item = valid_sample(node["items"], depth + 1)
                if found:
                    candidates.append([item])
    candidates += SAMPLES + [[], {}]
    for c in candidates:
        if check.is_valid(c):
            return True, copy.deepcopy(c)
    return False, None


def violations(node: dict[str, Any], keyword: str, default: Any = None) -> list[tuple[Any, str]]:
    """Values breaking `keyword` of the node, each with the fragment of the path it is refused at."""
    out: list[tuple[Any, str]] = []
    value = node[keyword]
    if keyword == "type":
        types = value if isinstance(value, list) else [value]
        for c in ("not-a-fitting-type", 7, 1.5, True, ["x"], {"x": 1}):
            kind = {str: "string", bool: "boolean", int: "integer", float: "number", list: "array", dict: "object"}[type(c)]
            if kind not in types and not (kind == "integer" and "number" in types):
                out.append((c, ""))
    elif keyword == "pattern":
        for c in ("Bad Value!", "", "-", "UPPER_case", "a" * 300, "x:latest", " ", "a/b/c/d/e"):
            if not re.search(value, c):
                out.append((c, ""))
    elif keyword == "enum":
        out += [("not-one-of-them", ""), (12345, "")]
    elif keyword == "const":
        out += [(not value if isinstance(value, bool) else "other", "")]
    elif keyword == "minimum":
        out += [(int(value) - 1 if float(value).is_integer() else value - 1, "")]
    elif keyword == "maximum":
        out += [(int(value) + 1 if float(value).is_integer() else value + 1, "")]
    elif keyword == "minLength":
        out += [("", "")]
    elif keyword == "maxLength":
        out += [("a" * (value + 1), "")]
    elif keyword == "minItems":
        out += [([], "")]
    elif keyword == "minProperties":
        out += [({}, "")]
    elif keyword == "uniqueItems" and value:
        found, item = valid_sample(node.get("items", True))
        if found:
            out += [([item, item], "")]
    elif keyword == "contains":
        out += [([], ""), (["something-else"], "")]
    elif keyword == "not":
        for c in ("latest", "nvcr.io/nvidia/pytorch:latest", "x:latest"):
            if node_validator(value).is_valid(c):
                out.append((c, ""))
    elif keyword == "required":
        found, obj = valid_sample(node)
        if found and isinstance(obj, dict):
            for req in value:
                broken = {k: v for k, v in obj.items() if k != req}
                if isinstance(default, dict) and req in default:
                    broken[req] = None  # a null deletes the key from the defaults
                out.append((broken, f".{req} is missing" if re.match(r"^[A-Za-z_][A-Za-z0-9_-]*$", req) else req))
    elif keyword == "additionalProperties" and value is False:
        out += [({"unknown key!": "x"}, '["unknown key!"]=')]
    elif keyword == "propertyNames":
        out += [({"Bad Key!": "x"}, "[key name]")]
    return out


def walk() -> list[tuple[str, list[Any], dict[str, Any]]]:
    """(rule id, key path, node) for every constrained node reachable from the root, each rule once."""
    seen: set[tuple[int, str]] = set()
    found: list[tuple[str, list[Any], dict[str, Any]]] = []

    def visit(node: Any, path: list[Any], depth: int) -> None:
        if depth > 14 or not isinstance(node, dict):
            return
        if "$ref" in node:
            visit(resolve(node), path, depth + 1)
            return
        for keyword in CONSTRAINTS:
            if keyword in node and (id(node), keyword) not in seen:
                seen.add((id(node), keyword))
                found.append((keyword, path, node))
        for name, sub in node.get("properties", {}).items():
            visit(sub, [*path, name], depth + 1)
        for sub in node.get("allOf", []):
            visit(sub, path, depth + 1)
        if isinstance(node.get("items"), dict):
            visit(node["items"], [*path, 0], depth + 1)
        if isinstance(node.get("additionalProperties"), dict):
            visit(node["additionalProperties"], [*path, "some-key"], depth + 1)
        for pattern, sub in node.get("patternProperties", {}).items():
            visit(sub, [*path, "example.com/some-key" if "/" in pattern else "some-key"], depth + 1)

    visit(SCHEMA, [], 0)
    return found


def overlay(path: list[Any], value: Any) -> Any:
    """A values overlay putting value at path; list items around it made valid by valid_sample."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if head == 0:
        return [overlay(rest, value)]
    return {head: overlay(rest, value)}


def merge(base: Any, over: Any) -> Any:
    """helm's merge of a values file over the defaults: maps merged, a null deletes the key."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = merge(base[k], v) if k in base else v
        return out
    return copy.deepcopy(over)


def dotted(path: list[Any]) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        elif re.match(r"^[A-Za-z_][A-Za-z0-9_-]*$", p):
            out += ("." if out else "") + p
        else:
            out += f'[{json.dumps(p)}]'
    return out


def cases() -> list[dict[str, Any]]:
    out = []
    for keyword, path, node in walk():
        default: Any = DEFAULTS
        for p in path:
            default = default.get(p) if isinstance(default, dict) else None
        if (not path and keyword == "type") or path[:1] == ["global"] or (path == ["airflow"] and keyword == "type"):
            # the whole values, helm's own globals, and the subchart's block: helm refuses a
            # non-map there itself while merging values ("type mismatch on airflow"), before any check
            continue
        for value, fragment in violations(node, keyword, default):
            if keyword == "minProperties" and isinstance(default, dict):
                value = dict.fromkeys(default)  # nulls delete every default entry
            case_values = build(path, value)
            if case_values is None:
                continue
            errors = list(ORACLE.iter_errors(merge(DEFAULTS, case_values)))
            if not errors:
                continue
            if any(list(e.absolute_path) != path for e in errors):
                continue  # refused elsewhere too: not a case of this rule alone
            out.append({
                "id": f"{dotted(path) or 'root'}:{keyword}",
                "keyword": keyword,
                "path": path,
                "values": case_values,
                "fragment": fragment,
                "problems": len(errors),
                "worded": WORDED.get(keyword),
                "node": node,
            })
            break
    return out


def build(path: list[Any], value: Any) -> Any:
    """The overlay with value at path, each list on the way holding one otherwise valid item."""
    node: Any = SCHEMA

    def rec(node: Any, i: int) -> tuple[bool, Any]:
        if i == len(path):
            return True, value
        node = resolve(node)
        p = path[i]
        if p == 0:
            items = node.get("items", True)
            found, sample = valid_sample(items)
            ok, inner = rec(items, i + 1)
            if not ok:
                return False, None
            if isinstance(inner, dict) and isinstance(sample, dict) and i + 1 < len(path):
                return True, [merge(sample, inner)]
            return True, [inner]
        sub = node.get("properties", {}).get(p)
        if sub is None:
            for pattern, ps in node.get("patternProperties", {}).items():
                if re.search(pattern, str(p)):
                    sub = ps
            if sub is None:
                sub = node.get("additionalProperties", True)
        if sub is True and node.get("allOf"):
            for part in node["allOf"]:
                part = resolve(part)
                if isinstance(part, dict) and p in part.get("properties", {}):
                    sub = part["properties"][p]
        ok, inner = rec(sub, i + 1)
        here: Any = {p: inner}
        if i > 0 and (node.get("required") or node.get("allOf")):
            found, sample = valid_sample(node)  # the object's other required keys, valid
            if found and isinstance(sample, dict):
                here = merge(sample, here)
        return ok, here

    ok, doc = rec(node, 0)
    return doc if ok else None


CASES = cases()


def test_every_rule_of_the_schema_has_a_case() -> None:
    """The walk reaches every constrained keyword the brief names, and each pattern, `not`,
    `oneOf` and `contains` carries its allowed form in words."""
    rules = walk()
    covered = {c["keyword"] for c in CASES}
    missing = [k for k in MUST_COVER if k not in covered]
    assert not missing, f"no generated case for {missing}"
    unworded = [
        f"{dotted(path) or 'root'}: {keyword}"
        for keyword, path, node in rules
        if keyword in WORDED and not node.get(WORDED[keyword])
    ]
    assert not unworded, f"schema nodes without their allowed form in words: {unworded}"
    by_rule = {(id(c["node"]), c["keyword"]) for c in CASES}
    untested = [
        f"{dotted(path) or 'root'}: {keyword}"
        for keyword, path, node in rules
        if (id(node), keyword) not in by_rule and not (keyword == "additionalProperties" and node[keyword] is not False)
        and not (keyword == "uniqueItems" and not node[keyword])
    ]
    # helm's own: the whole values, globals and the subchart's block must be maps (it refuses
    # other types while merging, before any template)
    helms = {"root: type", "global: type", "airflow: type"}
    # not generated yet: the generator's value breaks a second rule too (the restricted
    # contexts' allOf), so the oracle refuses it elsewhere as well; each rule is one of a shared
    # definition (restrictedContainerSecurityContext, restrictedPodSecurityContext, the pod
    # affinity term), covered by hand in tests/chart/test_bad_values.py for one of its uses, so
    # every use of those definitions (tasks.*, gpuScheduler.*, ...) is matched by its ending
    known_endings = (
        ".podAffinityTerm: required",
        ".podSecurityContext.seccompProfile: required",
        ".containerSecurityContext.capabilities.drop[0]: type",
        ".containerSecurityContext: required",
        ".containerSecurityContext.capabilities: required",
    )
    left = sorted(r for r in set(untested) - helms if not r.endswith(known_endings))
    assert left == [], f"{len(rules)} rules, without a case: {left}"
    assert len(CASES) >= 500, len(CASES)


def expect(path: list[Any], fragment: str) -> str:
    """The text a refusal of the case must contain: its key, or the fragment the keyword names."""
    if fragment == "[key name]":
        return f'the key name of {dotted([*path, "Bad Key!"])}="Bad Key!"'
    if fragment and not fragment.startswith((".", "[")):
        return fragment
    key = dotted(path) + fragment
    return key.lstrip(".")


def pack(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cases in as few renders as possible: a case under a list gets an item of its own appended
    to that list (its key path then names that index); other keys may not be touched twice."""

    def shape(doc: Any, prefix: tuple = ()) -> dict[tuple, str]:
        """The keys a case sets, with their values: map keys down to a leaf or a list (a list of
        one map is an item appended, shared with the items other cases append)."""
        if isinstance(doc, dict) and doc:
            out: dict[tuple, str] = {}
            for k, v in doc.items():
                out |= shape(v, (*prefix, k))
            return out
        if isinstance(doc, list) and len(doc) == 1 and isinstance(doc[0], dict):
            return {(*prefix, "[]"): ""}
        return {prefix: json.dumps(doc, sort_keys=True)}

    def clash(a: tuple, va: str, b: tuple, vb: str) -> bool:
        if a == b:
            return a[-1:] != ("[]",) and va != vb
        short, long = sorted((a, b), key=len)
        return long[: len(short)] == short or (short[-1:] == ("[]",) and long[: len(short) - 1] == short[:-1])

    def append(base: Any, over: Any) -> Any:
        if isinstance(base, dict) and isinstance(over, dict):
            out = dict(base)
            for k, v in over.items():
                out[k] = append(base[k], v) if k in base else copy.deepcopy(v)
            return out
        if isinstance(base, list) and isinstance(over, list):
            return base + copy.deepcopy(over)
        return copy.deepcopy(over)

    def placed(values: Any, path: list[Any]) -> list[Any]:
        """The case's path once its list item is appended to the batch's values."""
        out, cur = [], values
        for i, p in enumerate(path):
            if p == 0:
                out.append(len(cur) if isinstance(cur, list) else 0)
                return out + list(path[i + 1 :])
            out.append(p)
            cur = cur.get(p) if isinstance(cur, dict) else None
        return out

    batches: list[dict[str, Any]] = []
    for case in cases:
        mine = shape(case["values"])
        for batch in batches:
            if not any(clash(a, va, b, vb) for a, va in mine.items() for b, vb in batch["keys"].items()):
                break
        else:
            batch = {"cases": [], "values": {}, "keys": {}}
            batches.append(batch)
        where = placed(batch["values"], case["path"])
        batch["cases"].append({**case, "expect": expect(where, case["fragment"])})
        batch["values"] = append(batch["values"], case["values"])
        batch["keys"] |= mine
    return batches


BATCHES = pack(CASES)


@pytest.mark.parametrize("batch", BATCHES, ids=[f"batch{i}-{len(b['cases'])}-cases" for i, b in enumerate(BATCHES)])
def test_each_schema_rule_refuses_with_a_sentence(batch: dict[str, Any]) -> None:
    values = batch["values"]
    errors = list(ORACLE.iter_errors(merge(DEFAULTS, values)))
    assert len(errors) >= len(batch["cases"])
    with pytest.raises(HelmError) as excinfo:
        helm_template(values=values)
    message = str(excinfo.value)
    count = re.search(r"(\d+) problem\(s\) in the values", message)
    assert count, message
    problems = [p.strip() for p in message.split("\n* ")[1:]]
    # one sentence per refused key: where the oracle lists two keywords of one value (a type and
    # an enum), the chart says the first; every key the oracle refuses is named
    assert int(count.group(1)) == len(problems), message
    assert len({tuple(e.absolute_path) for e in errors}) <= len(problems) <= len(errors), message
    for error in errors:
        key = dotted(list(error.absolute_path))
        assert any(key in p for p in problems), f"the oracle refuses {key or 'the values'} ({error.message}):\n{message}"
    for problem in problems:
        assert "Allowed:" in problem and "regular expression" not in problem, problem
        assert not re.search(r"at '/|'not' failed|does not match pattern", problem), problem
    for case in batch["cases"]:
        hits = [p for p in problems if case["expect"] in p]
        assert hits, f"{case['id']}: no problem names {case['expect']!r}:\n{message}"
        worded = case["worded"] and case["node"].get(case["worded"])
        if worded:
            assert any(worded in p for p in hits), f"{case['id']}: {worded!r} not said:\n{hits}"


def test_the_defaults_and_every_shipped_values_file_pass_the_schema() -> None:
    """The converse: what the chart renders today is accepted by the oracle too."""
    files = [*sorted(paths.VALUES_DIR.glob("*.yaml")), *sorted(paths.CI_VALUES_DIR.glob("*.yaml"))]
    assert files
    for f in files:
        doc = yaml.safe_load(f.read_text()) or {}
        errors = [e.message for e in ORACLE.iter_errors(merge(DEFAULTS, doc))]
        assert not errors, f"{f.name}: {errors}"


def test_helm_lint_fails_on_a_refused_value_and_says_why() -> None:
    """`helm lint` turns `fail` into an [INFO] line and goes on; the chart then renders a document
    that is not YAML, so the lint fails as helm's own schema validation made it fail before."""
    from tests.support.helm import run_helm

    bad = run_helm(["lint", str(paths.CHART_DIR), "--set", "images.trainer.tag=latest",
                    "--set-string", "pools.gpuMaxWaitSeconds=1h"], check=False)
    out = bad.stdout + bad.stderr
    assert bad.returncode != 0, out
    assert "2 problem(s) in the values" in out, out
    assert 'images.trainer.tag="latest" is refused. Allowed: a fixed tag' in out, out
    assert 'pools.gpuMaxWaitSeconds="1h" is a string. Allowed: a whole number.' in out, out
    assert "[ERROR] templates/checks/values/check-values.yaml" in out, out
    good = run_helm(["lint", str(paths.CHART_DIR)], check=False)
    assert good.returncode == 0, good.stdout + good.stderr
