"""Spec of the structured logs: Cloud Logging's JSON on stdout, levels that filter, libraries included."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from shared.core import log


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]


def test_log_line_is_cloud_logging_json_with_fields(capsys: pytest.CaptureFixture[str]) -> None:
    log.info("stored", mailboxId="m1", count=2)
    (entry,) = lines(capsys)
    assert entry["severity"] == "INFO" and entry["message"] == "stored"
    assert entry["mailboxId"] == "m1" and entry["count"] == 2 and entry["time"].endswith("Z")


def test_debug_lines_are_off_at_the_default_level(capsys: pytest.CaptureFixture[str]) -> None:
    log.debug("message not synced", gmailMessageId="x")
    assert lines(capsys) == []


def test_debug_lines_show_when_the_level_allows(capsys: pytest.CaptureFixture[str]) -> None:
    own = log.logger()
    old = own.level
    own.setLevel(logging.DEBUG)
    try:
        log.debug("message not synced", gmailMessageId="x")
    finally:
        own.setLevel(old)
    (entry,) = lines(capsys)
    assert entry["severity"] == "DEBUG"


def test_library_warnings_come_out_structured(capsys: pytest.CaptureFixture[str]) -> None:
    log.logger()
    logging.getLogger("googleapiclient.http").warning("Sleeping %.2f seconds before retry", 1.5)
    (entry,) = lines(capsys)
    assert entry == {**entry, "severity": "WARNING", "logger": "googleapiclient.http",
                     "message": "Sleeping 1.50 seconds before retry"}


def test_library_info_lines_are_filtered(capsys: pytest.CaptureFixture[str]) -> None:
    log.logger()
    logging.getLogger("urllib3.connectionpool").info("Starting new HTTPS connection")
    assert lines(capsys) == []


def test_secrets_and_bodies_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    log.warning("oops", refresh_token="1//secret", html="<p>private</p>", mailboxId="m")
    (entry,) = lines(capsys)
    assert entry["refresh_token"] == "[redacted]" and entry["html"] == "[redacted]" and entry["mailboxId"] == "m"
    assert "secret" not in json.dumps(entry)


def test_execution_id_is_attached_inside_a_request(capsys: pytest.CaptureFixture[str]) -> None:
    from functions_framework import execution_id

    token = execution_id.execution_context_var.set(execution_id.ExecutionContext("exec-123", None))
    try:
        log.info("handled")
    finally:
        execution_id.execution_context_var.reset(token)
    (entry,) = lines(capsys)
    assert entry[log.EXECUTION_ID_LABEL] == {"execution_id": "exec-123"}
