"""Which Jinja templates may reach a pod, a Base Command job or a serving object.

Every check reads the template the way Airflow will: Jinja's own lexer and parser
(`Environment.lex`, `Environment.parse`), then a walk over the parsed nodes. No pattern over the
text: `{{ conn['x'].password }}`, `{{ (var).value.x }}`, `{#` comments or `{%` blocks look
different to a regex but not to the parser.

Two policies:

- `check_yaml_template` (YAML pipelines, an allow-list): each `{{ ... }}` is one of
  `params.<declared>`, `run_id`, `ds`, `ds_nodash`, `ts_nodash`, `dag.dag_id`, `task.task_id`,
  `platform.workspace|datasets|registry`, a string or integer constant, optionally followed by
  the `mlops_path_segment` filter. No statements (`{% %}`), no comments (`{# #}`), no calls,
  subscripts, operators or other names.
- `check_operator_templates` (every template field of the platform's operators, Python DAGs
  included, a deny-list): no `conn`, `var`, `dag_run` (its `conf` is free text of whoever
  triggers), `conf` (Airflow's configuration), `macros`, no attribute starting with `_`, and of
  `ti`/`task_instance` only `xcom_pull`, `map_index`, `try_number`, `task_id`, `run_id`,
  `dag_id`. A DAG author who needs one of the denied names opts in per task with the operator's
  `allow_template_names` (typed: a subset of `OPT_IN_NAMES`).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from .names import excerpt

# YAML pipelines: the run identifiers a step may need, and the platform's paths.
RUN_NAMES = ("run_id", "ds", "ds_nodash", "ts_nodash")
YAML_ATTRIBUTES = {
    "dag": ("dag_id",),
    "task": ("task_id",),
    "platform": ("workspace", "datasets", "registry"),
}
YAML_FILTERS = ("mlops_path_segment",)

# Operators: names whose values are secrets or free text, refused unless opted in.
OPT_IN_NAMES = ("conn", "var", "dag_run", "conf", "macros")
TI_ATTRIBUTES = ("xcom_pull", "map_index", "try_number", "task_id", "run_id", "dag_id")
# Tokens that never belong in a field: statements, comments, line statements/comments.
_FORBIDDEN_TOKENS = {
    "block_begin": "a {% %} statement",
    "comment_begin": "a {# #} comment",
    "linestatement_begin": "a line statement",
    "linecomment_begin": "a line comment",
    "raw_begin": "a {% raw %} block",
}


class TemplateNotAllowed(ValueError):
    """A template expression outside the policy; the message says which and what is allowed."""


@functools.cache
def _env() -> Any:
    from jinja2 import Environment

    return Environment()


def _parse(text: str, statements: bool = False) -> Any:
    """The parsed template; without `statements`, `{% %}` and `{# #}` are refused first (a
    comment is dropped by the parser, so it is refused on the token stream)."""
    from jinja2 import TemplateSyntaxError

    env = _env()
    try:
        if not statements:
            for _lineno, token, _value in env.lex(text):
                if token in _FORBIDDEN_TOKENS:
                    raise TemplateNotAllowed(f"{_FORBIDDEN_TOKENS[token]} is not allowed in a field")
        return env.parse(text)
    except TemplateSyntaxError as exc:
        raise TemplateNotAllowed(f"not a valid template ({exc.message})") from None


def has_template(text: str) -> bool:
    return any(mark in text for mark in ("{{", "{%", "{#"))


# --- YAML pipelines (allow-list) ------------------------------------------------------------------


def yaml_allowed_text(params: Collection[str]) -> str:
    names = [f"params.{p}" for p in params] or ["params.<declared>"]
    attrs = [f"{k}.{a}" for k, v in YAML_ATTRIBUTES.items() for a in v]
    return ", ".join([*names, *RUN_NAMES, *attrs]) + " (optionally | " + ", ".join(YAML_FILTERS) + ")"


def check_yaml_template(text: str, params: Collection[str]) -> None:
    """Raise TemplateNotAllowed unless every expression of `text` is on the YAML allow-list."""
    if not has_template(text):
        return
    problem = _yaml_problem(text, tuple(params))
    if problem:
        raise TemplateNotAllowed(problem)


@functools.lru_cache(maxsize=4096)
def _yaml_problem(text: str, params: tuple[str, ...]) -> str | None:
    try:
        _check_yaml_tree(text, params)
    except TemplateNotAllowed as exc:
        return str(exc)
    return None


def _check_yaml_tree(text: str, params: Collection[str]) -> None:
    from jinja2 import nodes

    tree = _parse(text)
    for stmt in tree.body:
        if not isinstance(stmt, nodes.Output):
            raise TemplateNotAllowed(f"{type(stmt).__name__} statements are not allowed")
        for node in stmt.nodes:
            if isinstance(node, nodes.TemplateData):
                continue
            _yaml_expression(node, params)


def _yaml_expression(node: Any, params: Collection[str]) -> None:
    from jinja2 import nodes

    if isinstance(node, nodes.Filter):
        if node.name not in YAML_FILTERS or node.args or node.kwargs or node.dyn_args or node.dyn_kwargs:
            raise TemplateNotAllowed(
                f"filter {node.name!r} is not allowed (filters: {', '.join(YAML_FILTERS)}, without arguments)"
            )
        _yaml_expression(node.node, params)
        return
    if isinstance(node, nodes.Const) and type(node.value) in (str, int):
        return
    if isinstance(node, nodes.Name) and node.name in RUN_NAMES:
        return
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
        base, attr = node.node.name, node.attr
        if base == "params":
            if attr in params:
                return
            raise TemplateNotAllowed(
                f"params.{attr} is not declared under params ({', '.join(params) or 'none declared'})"
            )
        if attr in YAML_ATTRIBUTES.get(base, ()):
            return
    raise TemplateNotAllowed(
        f"{_describe(node)} is not allowed in a YAML pipeline; allowed: {yaml_allowed_text(params)}"
    )


def _describe(node: Any) -> str:
    """`conn.db.password`, `dag_run.conf['x']`, `name 'x'` or the expression's kind."""
    from jinja2 import nodes

    parts: list[str] = []
    while isinstance(node, (nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            parts.insert(0, f".{node.attr}")
        else:
            key = node.arg.value if isinstance(node.arg, nodes.Const) else "..."
            parts.insert(0, f"[{key!r}]")
        node = node.node
    if isinstance(node, nodes.Name):
        return node.name + "".join(parts) if parts else f"name {node.name!r}"
    return f"expression {type(node).__name__}"


# --- operators (deny-list) ------------------------------------------------------------------------


def check_operator_template(text: str, allow: Collection[str] = ()) -> None:
    """Raise TemplateNotAllowed when `text` reads a denied name (not opted in with `allow`)."""
    if not has_template(text):
        return
    problem = _operator_problem(text, tuple(sorted(allow)))
    if problem:
        raise TemplateNotAllowed(problem)


@functools.lru_cache(maxsize=4096)
def _operator_problem(text: str, allow: tuple[str, ...]) -> str | None:
    """The reason `text` is refused, or None (cached: DAG files repeat the same templates)."""
    try:
        _check_operator_tree(text, allow)
    except TemplateNotAllowed as exc:
        return str(exc)
    return None


def _check_operator_tree(text: str, allow: Collection[str]) -> None:
    from jinja2 import nodes

    denied = set(OPT_IN_NAMES) - set(allow)
    tree = _parse(text, statements=True)
    for node in tree.find_all((nodes.Name, nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Name) and node.name in denied:
            raise TemplateNotAllowed(
                f"{node.name!r} is not readable from a task field (secrets or free text of a run's conf); "
                f"opt in per task with allow_template_names={{{node.name!r}}} (one of {', '.join(OPT_IN_NAMES)})"
            )
        if isinstance(node, nodes.Name):
            continue
        attr = node.attr if isinstance(node, nodes.Getattr) else _const(node)
        if isinstance(attr, str) and attr.startswith("_"):
            raise TemplateNotAllowed(f"attribute {attr!r} is not allowed")
        if isinstance(node, (nodes.Getattr, nodes.Getitem)) and isinstance(node.node, nodes.Name):
            if node.node.name in ("ti", "task_instance") and attr not in TI_ATTRIBUTES:
                raise TemplateNotAllowed(
                    f"{node.node.name}.{attr} is not allowed (allowed: {', '.join(TI_ATTRIBUTES)})"
                )


def _const(node: Any) -> Any:
    from jinja2 import nodes

    return node.arg.value if isinstance(node.arg, nodes.Const) else None


def strings(value: Any, depth: int = 0) -> Iterator[str]:
    """Every string inside a field value (lists, mappings, Kubernetes client models)."""
    if depth > 20:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from strings(k, depth + 1)
            yield from strings(v, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from strings(v, depth + 1)
    elif hasattr(value, "openapi_types"):  # kubernetes.client models (V1EnvVar, ...)
        for attr in value.openapi_types:
            yield from strings(getattr(value, attr, None), depth + 1)


def check_operator_fields(task_id: str, fields: Mapping[str, Any], allow: Collection[str] = ()) -> None:
    """Every template field of an operator (name -> value) against `check_operator_template`."""
    bad = set(allow) - set(OPT_IN_NAMES)
    if bad:
        raise ValueError(f"{task_id}: allow_template_names {sorted(bad)}: allowed are {', '.join(OPT_IN_NAMES)}")
    for field, value in fields.items():
        for text in strings(value):
            try:
                check_operator_template(text, allow)
            except TemplateNotAllowed as exc:
                raise TemplateNotAllowed(f"{task_id}: field {field!r}: {excerpt(text)}: {exc}") from None
