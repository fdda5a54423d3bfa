"""The developer console in a real browser: headless Chromium driven by selenium (chromedriver).

A rep is connected through the real consent page, a contact's mail is
delivered from the console's form, and the page shows it without a reload;
then the rep reads it in Gmail and the page shows the CRM's `read` flip (R19).
"Without a reload" is checked by a marker set on `window` before the change:
a reload would drop it.

Needs Debian's chromium and chromium-driver (scripts/ensure_chromium.sh, run
by `make test`): where they cannot be had, these tests are skipped and say why.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.console import browser as chromium
from tests.e2e.sync_steps import connect_rep, mail, seed_contact

pytestmark = pytest.mark.e2e

REP = "rep@example.com"
CLIENT = "carla@client.test"
WAIT = 30  # seconds: a sync pass and a page refresh, on a loaded machine


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    why = chromium.unavailable()
    if why:
        pytest.skip(f"no browser for the console test: {why}")
    b = chromium.launch(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield b
    finally:
        b.quit()


@pytest.fixture
def page(console: str, browser: Any) -> chromium.ConsolePage:
    return chromium.ConsolePage(browser, console, timeout=WAIT)


def test_console_connects_a_rep_and_shows_a_delivered_mail_and_its_event_live(
        clean: Any, page: chromium.ConsolePage, tmp_path: Path) -> None:
    page.open()
    page.add_user("acme", "alice", "alice@acme.test", "Alice")
    page.add_contact("acme", "carla", CLIENT, "Carla Client")

    # oauth /connect -> the simulator's consent page (typed in, Allow) -> oauth /callback -> the console
    notice = page.connect("acme", "alice", REP)

    assert notice == "acme/alice connected Gmail"
    assert page.attr('[data-user="acme/alice"]', "data-status") == "connected"
    page.wait_for(f'tr[data-mailbox="{REP}"]', "the connected mailbox in the mailboxes panel")

    page.mark()
    form = page.write_as_contact("acme", "carla", "Quote please", "Can you send the quote?")
    assert form.find_element("name", "to").get_attribute("value") == REP  # prefilled: the account's mailbox

    shown = page.wait_for(page.message("Quote please"), "the synced message on the page")
    assert "Can you send the quote?" in shown and "← in" in shown
    message_id = page.attr(page.message("Quote please"), "data-message-id")
    event = page.wait_for(f'#events li[data-type="message.synced"][data-message-id="{message_id}"]',
                          "its crm-events entry")
    assert "✓ schema" in event and "contactId=carla" in event
    assert page.not_reloaded(), "the page reloaded"
    page.b.save_screenshot(str(tmp_path / "console.png"))


def test_r19_console_shows_a_message_read_in_gmail_without_a_reload(
        clean: Any, page: chromium.ConsolePage, sim_client: Any, firestore_db: Any) -> None:
    connect_rep(clean, sim_client, firestore_db, "acme", "alice", REP)
    seed_contact(firestore_db, "acme", "carla", CLIENT)
    sim_client.deliver(REP, mail(CLIENT, REP, "Read me", "Please read this"))
    page.open()
    page.wait_for(page.message("Read me"), "the synced message on the page")
    page.wait(lambda p: p.attr(p.message("Read me"), "data-read") == "unread",
              "the CRM to show the new mail as unread (R19: `read: false`)")
    page.mark()

    page.gmail("Read me", 'data-change="read"')  # the rep opens it in Gmail

    page.wait(lambda p: p.attr(p.message("Read me"), "data-read") == "read",
              "the CRM to show it read (R19: Gmail's label change synced to `read: true`)")
    assert "UNREAD" not in (page.text(page.message("Read me") + " .gmail") or "UNREAD")
    assert page.not_reloaded(), "the page reloaded"
