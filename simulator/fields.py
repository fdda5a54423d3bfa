"""Partial responses: Google's `fields` parameter (`fields=history(id,messagesAdded),nextPageToken`).

Google answers only the selected fields, and refuses (400) a selection that
names a field the response schema does not have. Both matter to the project:
its sync trims `messages.get` with `fields`, and a typo there would silently
drop data at Google; here it fails the same way.

Syntax: comma-separated selections; `a/b` selects b inside a; `a(b,c)` selects
b and c inside a (each element when a is a list); `*` selects everything.
"""

from __future__ import annotations

from typing import Any

Selection = dict[str, "Selection | None"]  # None: the whole value


class FieldsError(ValueError):
    pass


def parse(text: str) -> Selection:
    sel, rest = _parse_list(text.replace(" ", ""), 0)
    if rest != len(text.replace(" ", "")):
        raise FieldsError(f"Invalid field selection {text}")
    return sel


def _parse_list(s: str, i: int) -> tuple[Selection, int]:
    out: Selection = {}
    while True:
        start = i
        while i < len(s) and s[i] not in ",()":
            i += 1
        path = s[start:i]
        if not path:
            raise FieldsError(f"Invalid field selection {s}")
        sub: Selection | None = None
        if i < len(s) and s[i] == "(":
            sub, i = _parse_list(s, i + 1)
            if i >= len(s) or s[i] != ")":
                raise FieldsError(f"Invalid field selection {s}")
            i += 1
        _merge(out, path.split("/"), sub)
        if i < len(s) and s[i] == ",":
            i += 1
            continue
        return out, i


def _merge(into: Selection, names: list[str], sub: Selection | None) -> None:
    head, *tail = names
    if not head:
        raise FieldsError("Invalid field selection: empty name")
    if not tail:
        if head in into and into[head] is not None and sub is not None:
            into[head].update(sub)  # type: ignore[union-attr]
        else:
            into[head] = None if (head in into and into[head] is None) else sub
        return
    child = into.get(head, {})
    if child is None:
        return  # already selected whole
    into[head] = child
    _merge(child, tail, sub)


def check(sel: Selection, schema_ref: str, schemas: dict[str, Any]) -> None:
    """FieldsError naming the first selected field the response schema does not have."""
    _check(sel, schemas.get(schema_ref, {}), schemas)


def _check(sel: Selection, schema: dict[str, Any], schemas: dict[str, Any]) -> None:
    while "$ref" in schema or schema.get("type") == "array":
        schema = schemas.get(schema["$ref"], {}) if "$ref" in schema else schema.get("items", {})
    props = schema.get("properties", {})
    for name, sub in sel.items():
        if name == "*":
            continue
        if name not in props:
            raise FieldsError(f"Invalid field selection {name}")
        if sub:
            _check(sub, props[name], schemas)


def apply(value: Any, sel: Selection | None) -> Any:
    if sel is None or ("*" in sel and len(sel) == 1):
        return value
    if isinstance(value, list):
        return [apply(v, sel) for v in value]
    if not isinstance(value, dict):
        return value
    if "*" in sel:
        return {k: apply(v, sel.get(k)) for k, v in value.items()}
    return {k: apply(value[k], sub) for k, sub in sel.items() if k in value}
