"""The developer console's screenshot for docs/ (docs/console.png), from a real stack and a real browser.

    .venv/bin/python scripts/console_screenshot.py [--out docs/console.png]

Starts a local stack with its console and drives the page as the browser test
does (devstack.console.browser.ConsolePage): adds a CRM user and two contacts,
connects Gmail through the consent page, has the contacts write in (one with
an attachment), replies and stars from Gmail, sends from the CRM through
`send_email`, then captures the whole page. Needs Debian's chromium and
chromium-driver (scripts/ensure_chromium.sh).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.console import browser as chromium  # noqa: E402
from devstack.stack import Stack, StackSettings  # noqa: E402

REP = "rep@example.com"


def scene(stack: Stack, page: chromium.ConsolePage, scratch: Path) -> None:
    page.open()
    page.add_user("acme", "alice", "alice@acme.test", "Alice Rep")
    page.add_contact("acme", "carla", "carla@client.test", "Carla Client")
    page.add_contact("acme", "dave", "dave@prospect.test", "Dave Prospect")
    page.connect("acme", "alice", REP)

    offer = scratch / "requirements.pdf"
    offer.write_bytes(b"%PDF-1.4\n% our requirements for 40 seats\n")
    page.all("#deliver-form input[name=attachment]")[0].send_keys(str(offer))
    page.write_as_contact("acme", "carla", "Quote for 40 seats", "Hi Alice, could you send a quote for 40 seats? "
                          "Our requirements are attached.")
    page.wait_for(page.message("Quote for 40 seats"), "Carla's mail")
    page.compose("Quote for 40 seats", "reply", "Hi Carla, the quote is on its way. Best, Alice")
    page.wait_for(page.message("Re: Quote for 40 seats"), "the reply from Gmail")

    page.write_as_contact("acme", "dave", "Meeting next week?", "Hello, do you have time for a call on Tuesday?")
    page.wait_for(page.message("Meeting next week?"), "Dave's mail")
    page.gmail("Meeting next week?", 'data-change="star"')

    resp = requests.post(stack.function_url("send_email"), timeout=60,
                         headers={"Authorization": f"Bearer {stack.secrets.crm_api_key}"},
                         json={"accountId": "acme", "userId": "alice", "contactId": "carla",
                               "subject": "Your quote: 40 seats", "text": "Please find the quote below.",
                               "idempotencyKey": "screenshot-quote"})
    resp.raise_for_status()
    page.wait_for(page.message("Your quote: 40 seats"), "the CRM send")
    for event_type in ("connection.status", "message.synced", "message.sent"):
        page.wait_for(f'#events li[data-type="{event_type}"]', f"a {event_type} event")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "console.png")
    args = parser.parse_args()
    why = chromium.unavailable()
    if why:
        print(f"cannot take the screenshot: {why}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="console-shot-") as tmp, Stack(StackSettings(console=True)) as stack:
        b = chromium.launch(Path(tmp) / "profile")
        try:
            page = chromium.ConsolePage(b, stack.console_url)
            scene(stack, page, Path(tmp))
            b.execute_script("document.getElementById('toast').hidden = true; window.scrollTo(0, 0);")
            height = int(b.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]["height"])
            b.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",  # the whole page, not the window
                              {"width": 1480, "height": min(height, 3000), "deviceScaleFactor": 1, "mobile": False})
            args.out.parent.mkdir(parents=True, exist_ok=True)
            b.save_screenshot(str(args.out))
        finally:
            b.quit()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
