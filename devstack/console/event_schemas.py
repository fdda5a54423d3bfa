"""The JSON Schemas of the events on `crm-events` (schemas/events/<type>.json), loaded once.

One place that answers "is this a valid CRM event?", for the console (which
marks each event it shows) and for the tests (which check every event the
suite publishes). An event is judged as a CRM receives it: the JSON body and
the message attributes that `shared.core.events.publish` sets.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "events"
ATTRIBUTES = ("type", "accountId", "eventId")  # copied from the body so a subscription can filter


@functools.cache
def schemas() -> dict[str, dict[str, Any]]:
    """Event type -> its JSON Schema (the file name is the type)."""
    return {p.name.removesuffix(".json"): json.loads(p.read_text()) for p in sorted(SCHEMA_DIR.glob("*.json"))}


@functools.cache
def _validator(event_type: str) -> Any:
    from jsonschema import Draft202012Validator, FormatChecker

    schema = schemas()[event_type]
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def problems(body: Any, attributes: Mapping[str, str] | None = None) -> list[str]:
    """Everything wrong with one event (empty: valid). `attributes` None: the body alone."""
    if not isinstance(body, dict):
        return [f"the body is not a JSON object: {type(body).__name__}"]
    event_type = body.get("type")
    if not isinstance(event_type, str) or event_type not in schemas():
        return [f"unknown event type {event_type!r}: no schemas/events/{event_type}.json"]
    found = [
        f"{'/'.join(str(p) for p in err.absolute_path) or '(body)'}: {err.message}"
        for err in sorted(_validator(event_type).iter_errors(body), key=lambda e: list(e.absolute_path))
    ]
    if attributes is not None:
        for name in ATTRIBUTES:
            if attributes.get(name) != body.get(name):
                found.append(f"attribute {name}={attributes.get(name)!r} differs from the body's {body.get(name)!r}")
    return found
