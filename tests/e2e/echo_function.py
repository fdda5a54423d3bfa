"""A test-only Pub/Sub-triggered function: writes each CloudEvent it gets to a file.

Served by functions-framework exactly like the real push-triggered functions,
so the smoke test proves the emulator → push → CloudEvent path without
depending on any product function being finished.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import functions_framework


@functions_framework.cloud_event
def echo(cloud_event: Any) -> None:
    out = Path(os.environ["ECHO_OUT_DIR"])
    record = {
        "id": cloud_event["id"],
        "type": cloud_event["type"],
        "source": cloud_event["source"],
        "data": cloud_event.data,
    }
    tmp = out / f".{cloud_event['id']}.tmp"
    tmp.write_text(json.dumps(record))
    tmp.rename(out / f"{cloud_event['id']}.json")
