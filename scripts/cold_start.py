"""send_email's cold start against its baseline (issue 12), for scripts/bench_send.py.

As deployed: a functions-framework process (the same command the local stack
and Cloud Functions' Python runtime run), timed from its spawn to its first
answer: send_email serving a first send, against a function that only
imports the client libraries send_email imports on its path
(scripts/cold_baseline_main.py). Both pay the interpreter, functions-framework
and server start; the difference is the project's own code and the first
send's work. The runs are interleaved (the order alternates each round) so
both sides see the machine's load as it drifts; each figure is the median of
the rounds' ratios.

Two more figures, so the first can be read honestly:
- like for like: against the baseline with the garbage collector paused as
  send_email pauses it (shared/core/coldstart.py), i.e. only the project's
  overhead, without what pausing the collector saves the libraries' import;
- in one interpreter (the figure 0.2 first reported): `import main` and the
  first send through Flask's test request, against importing Flask and the
  libraries alone, both after the interpreter and functions-framework started.
"""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BASELINE_SOURCE = REPO / "scripts" / "cold_baseline_main.py"

sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from cold_baseline_main import CLIENT_LIBS  # noqa: E402

from devstack.functions import function_command  # noqa: E402

IN_INTERPRETER = """
import importlib, json, sys, time
t0 = time.perf_counter()
import flask
app = flask.Flask("cold")  # functions-framework builds its app at startup: part of the baseline
import flask.testing, werkzeug.test, click.testing  # the test request's own modules: neither side's
t1 = time.perf_counter()
if sys.argv[4] == "libraries-only":
    for m in sys.argv[3].split(","):
        importlib.import_module(m)
else:
    import main
    body, headers = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    with app.test_request_context("/", method="POST", json=body, headers=headers):
        assert main.send_email(flask.request).status_code == 200
    missing = [m for m in sys.argv[3].split(",") if m not in sys.modules]
    assert not missing, f"the baseline names libraries the send does not import: {missing}"
print(t1 - t0, time.perf_counter() - t1)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_once(target: str, source: Path, env: dict[str, str], body: dict[str, Any], headers: dict[str, str],
               log: Path) -> float:
    """Spawn functions-framework serving `target`, send it one request; seconds from spawn to its answer."""
    port = _free_port()
    with log.open("ab") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(function_command(target, port, source), cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
        try:
            deadline = t0 + 60
            while True:  # the port opens once main.py is imported and the server listens
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                try:
                    conn.connect()
                    break
                except ConnectionRefusedError:
                    if time.perf_counter() > deadline or proc.poll() is not None:
                        raise RuntimeError(f"{target} did not start; see {log}") from None
                    time.sleep(0.001)
            conn.request("POST", "/", body=json.dumps(body),
                         headers={**headers, "Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            elapsed = time.perf_counter() - t0
            if resp.status != 200:
                raise RuntimeError(f"{target} answered {resp.status}; see {log}")
            return elapsed
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def measure(env: dict[str, str], auth: dict[str, str], send_body: Any, runs: int, log: Path) -> dict[str, Any]:
    """`send_body(k)`: the k-th first send's request (each with a key of its own)."""
    # The libraries load their bytecode (pip compiled it at install); compile the project's modules too, or
    # every run would compile them from source (this machine sets PYTHONDONTWRITEBYTECODE). A deployed
    # function compiles its own source on its first import: neither side here pays that.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "main.py", "functions", "shared",
                    str(BASELINE_SOURCE)], cwd=REPO, check=True, capture_output=True)

    def interpreter(mode: str, k: int) -> float:
        out = subprocess.run([sys.executable, "-c", IN_INTERPRETER, json.dumps(send_body(k)), json.dumps(auth),
                              ",".join(("functions_framework", *CLIENT_LIBS)), mode], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        return float(out.stdout.strip().splitlines()[-1].split()[1])

    sides: dict[str, list[float]] = {"send": [], "baseline": [], "paused": [], "send_in": [], "libs_in": []}
    def step(name: str, k: int) -> float:
        if name == "send":
            return serve_once("send_email", REPO / "main.py", env, send_body(k), auth, log)
        if name in ("baseline", "paused"):
            target = "baseline" if name == "baseline" else "baseline_collector_paused"
            return serve_once(target, BASELINE_SOURCE, env, {}, {}, log)
        return interpreter("lazy" if name == "send_in" else "libraries-only", runs + k)

    for k in range(runs):
        for name in (list(sides) if k % 2 == 0 else list(sides)[::-1]):
            sides[name].append(step(name, k))

    def ratios(a: str, b: str) -> list[float]:
        return [x / y for x, y in zip(sides[a], sides[b], strict=True)]

    ms = {name: statistics.median(v) * 1000 for name, v in sides.items()}
    return {
        "runs": runs, "ms": ms,
        "ratio": statistics.median(ratios("send", "baseline")),
        "ratios": [round(x, 2) for x in ratios("send", "baseline")],
        "like_for_like": statistics.median(ratios("send", "paused")),
        "like_for_like_ratios": [round(x, 2) for x in ratios("send", "paused")],
        "in_interpreter": statistics.median(ratios("send_in", "libs_in")),
        "in_interpreter_ratios": [round(x, 2) for x in ratios("send_in", "libs_in")],
    }

