"""Snippets: one definition for the sync, the send path and Auto BCC.

The CRM shows the snippet in conversation lists; three copies had drifted
(the send path kept `<style>`/`<script>` text that the sync dropped).
"""

from __future__ import annotations

import html as html_lib
import re

SNIPPET_LENGTH = 200

_TAG = re.compile(r"<[^>]+>")
_DROP = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


def html_to_text(markup: str) -> str:
    return " ".join(html_lib.unescape(_TAG.sub(" ", _DROP.sub(" ", markup))).split())


def make_snippet(gmail_snippet: str | None, text: str | None, markup: str | None) -> str:
    """Gmail's own snippet (HTML-escaped on the wire), else the start of the text, else of the html."""
    if gmail_snippet:
        s = " ".join(html_lib.unescape(gmail_snippet).split())
    elif text:
        s = " ".join(text.split())
    elif markup:
        s = html_to_text(markup)
    else:
        s = ""
    return s[:SNIPPET_LENGTH]
