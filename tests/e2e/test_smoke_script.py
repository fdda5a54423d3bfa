"""scripts/smoke.py, the first-deploy check (issue 23), green against the local stack.

The same script an operator runs against a real project runs here against the
test stack's endpoints document: the simulator's headless consent stands in
for the person at the browser, and a delivered reply for the contact.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from devstack.stack import Stack

ROOT = Path(__file__).resolve().parents[2]


def test_issue23_smoke_script_connects_sends_receives_and_reports_status_on_the_local_stack(
        stack: Stack, tmp_path: Path) -> None:
    endpoints = stack.write_endpoints(tmp_path / "endpoints.json")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "smoke.py"), "--endpoints", str(endpoints),
                           "--timeout", "90"], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "SMOKE OK" in proc.stdout
    for step in ("[2/6] Connect", "[3/6] Send", "[4/6] Receive", "[5/6] Status", "[6/6] Clean-up"):
        assert step in proc.stdout, proc.stdout
    assert stack.secrets.crm_api_key not in proc.stdout + proc.stderr  # no key in its output


def test_issue23_smoke_script_names_what_an_endpoints_file_lacks(tmp_path: Path) -> None:
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text('{"projectId": "acme-crm-prod", "functions": {"oauth": "https://oauth.example"}}')
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "smoke.py"), "--endpoints", str(endpoints)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1
    assert "crmApiKey (or CRM_API_KEY)" in proc.stderr and "SMOKE FAILED" in proc.stderr


def test_issue23_smoke_script_against_a_real_project_needs_a_contact_a_person_can_reply_from(tmp_path: Path) -> None:
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text('{"projectId": "acme-crm-prod", "crmApiKey": "k", "functions": '
                         '{"oauth": "https://oauth.example", "send_email": "https://send.example"}}')
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "smoke.py"), "--endpoints", str(endpoints)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1
    assert "against Google" not in proc.stdout and "(Google)" in proc.stdout
    assert "--contact-email is required" in proc.stderr
