"""Injected faults on Gmail methods: error codes, latency, repeatability with a seed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from googleapiclient.errors import HttpError

from tests.simulator.conftest import gmail_service

REP = "rep@example.com"


def put_faults(sim: str, spec: dict[str, Any]) -> requests.Response:
    return requests.put(f"{sim}/sim/faults", json=spec, timeout=5)


def codes(gmail: Any, n: int) -> list[int]:
    out = []
    for _ in range(n):
        try:
            gmail.users().messages().list(userId="me").execute()
            out.append(200)
        except HttpError as err:
            out.append(err.resp.status)
    return out


def test_error_rate_one_answers_the_configured_code_with_googles_body(sim: str, token_for: Callable[..., str]) -> None:
    gmail = gmail_service(sim, token_for(REP))
    put_faults(sim, {"methods": {"gmail.users.messages.list": {"errorRate": 1, "codes": [503]}}}).raise_for_status()
    with pytest.raises(HttpError) as err:
        gmail.users().messages().list(userId="me").execute()
    assert err.value.resp.status == 503
    assert err.value.error_details[0]["reason"] == "backendError"
    assert gmail.users().getProfile(userId="me").execute()["emailAddress"] == REP  # other methods unaffected


def test_short_method_names_and_wildcard_select_methods(sim: str, token_for: Callable[..., str]) -> None:
    gmail = gmail_service(sim, token_for(REP))
    put_faults(sim, {"methods": {"messages.list": {"errorRate": 1, "codes": [500]},
                                 "*": {"errorRate": 1, "codes": [429]}}}).raise_for_status()
    assert codes(gmail, 1) == [500]
    with pytest.raises(HttpError) as err:
        gmail.users().getProfile(userId="me").execute()
    assert err.value.resp.status == 429


def test_same_seed_gives_the_same_fault_sequence(sim: str, token_for: Callable[..., str]) -> None:
    gmail = gmail_service(sim, token_for(REP))
    spec = {"seed": 42, "methods": {"*": {"errorRate": 0.5, "codes": [429, 500, 503]}}}
    put_faults(sim, spec).raise_for_status()
    first = codes(gmail, 30)
    put_faults(sim, spec).raise_for_status()
    assert codes(gmail, 30) == first
    assert {200, 429, 500, 503} <= set(first)


def test_latency_is_added(sim: str, token_for: Callable[..., str]) -> None:
    gmail = gmail_service(sim, token_for(REP))
    put_faults(sim, {"methods": {"getProfile": {"latencyMs": 300}}}).raise_for_status()
    t0 = time.monotonic()
    gmail.users().getProfile(userId="me").execute()
    assert time.monotonic() - t0 >= 0.3


def test_client_retries_ride_out_injected_5xx(sim: str, token_for: Callable[..., str]) -> None:
    gmail = gmail_service(sim, token_for(REP))
    put_faults(sim, {"seed": 3, "methods": {"*": {"errorRate": 0.5, "codes": [503]}}}).raise_for_status()
    for _ in range(5):
        request = gmail.users().messages().list(userId="me")
        request._sleep = lambda seconds: None  # the client's backoff; the simulator's answers are what is tested
        request.execute(num_retries=8)


@pytest.mark.parametrize(
    "spec",
    [
        {"methods": {"*": {"errorRate": 2}}},
        {"methods": {"*": {"codes": [418]}}},
        {"methods": {"*": {"latency": 5}}},
        {"notifications": {"dropRate": -1}},
        {"seed": "x"},
        {"bogus": 1},
    ],
)
def test_invalid_fault_spec_is_400_and_changes_nothing(sim: str, spec: dict[str, Any]) -> None:
    put_faults(sim, {"methods": {"*": {"latencyMs": 1}}}).raise_for_status()
    resp = put_faults(sim, spec)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_faults"
    assert requests.get(f"{sim}/sim/faults", timeout=5).json()["methods"] == {"*": {"latencyMs": 1}}


def test_reset_clears_faults(sim: str, token_for: Callable[..., str]) -> None:
    put_faults(sim, {"methods": {"*": {"errorRate": 1}}}).raise_for_status()
    requests.post(f"{sim}/sim/reset", timeout=5).raise_for_status()
    gmail = gmail_service(sim, token_for(REP))
    assert gmail.users().getProfile(userId="me").execute()["emailAddress"] == REP


def test_batch_key_fails_the_whole_batch_request(sim: str, token_for: Callable[..., str]) -> None:
    gmail = gmail_service(sim, token_for(REP))
    put_faults(sim, {"methods": {"batch": {"errorRate": 1, "codes": [503]}}}).raise_for_status()
    batch = gmail.new_batch_http_request()
    batch.add(gmail.users().getProfile(userId="me"))
    with pytest.raises(HttpError) as err:
        batch.execute()
    assert err.value.resp.status == 503
    assert gmail.users().getProfile(userId="me").execute()["emailAddress"] == REP  # plain calls unaffected


# --- latency spread (latencyP90Ms): a Gmail-like latency distribution for benchmarks -------------------------

def _latencies_ms(spec: dict[str, Any], n: int, method: str = "messages.send") -> list[float]:
    from simulator.faults import Faults

    f = Faults()
    f.set(spec)
    return [f.for_call(f"gmail.users.{method}", method)[0] * 1000 for _ in range(n)]


def test_latency_spread_draws_around_the_median_with_the_given_p90() -> None:
    drawn = sorted(_latencies_ms({"seed": 5, "methods": {"messages.send": {"latencyMs": 300, "latencyP90Ms": 600}}},
                                 4000))
    median, p90 = drawn[len(drawn) // 2], drawn[int(len(drawn) * 0.9)]
    assert 270 <= median <= 330 and 540 <= p90 <= 660
    assert min(drawn) > 0 and len(set(drawn)) > 3900  # a distribution, not a constant


def test_latency_spread_is_repeatable_with_the_seed() -> None:
    spec = {"seed": 9, "methods": {"*": {"latencyMs": 100, "latencyP90Ms": 250}}}
    assert _latencies_ms(spec, 50) == _latencies_ms(spec, 50)


def test_latency_spread_does_not_change_the_error_draws() -> None:
    from simulator.faults import Faults

    def errors(extra: dict[str, Any]) -> list[int | None]:
        f = Faults()
        f.set({"seed": 4, "methods": {"messages.send": {"errorRate": 0.5, "codes": [500, 503], **extra}}})
        return [f.for_call("gmail.users.messages.send", "messages.send")[1] for _ in range(200)]

    assert errors({"latencyMs": 50, "latencyP90Ms": 90}) == errors({})


def test_without_a_spread_the_latency_is_fixed() -> None:
    assert set(_latencies_ms({"methods": {"messages.send": {"latencyMs": 40}}}, 20)) == {40.0}


@pytest.mark.parametrize("method", [{"latencyP90Ms": 100}, {"latencyMs": 100, "latencyP90Ms": 50}])
def test_a_spread_without_a_median_or_below_it_is_400(sim: str, method: dict[str, Any]) -> None:
    resp = put_faults(sim, {"methods": {"messages.send": method}})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_faults"
