"""The page `GET /start` answers: a button that continues to Google, so that opening the URL binds nothing.

Why a page (issue 23): the CRM's `authorizationUrl` travels by mail and chat,
where link scanners (Safe Links, Mimecast, chat unfurlers) open every URL
before the rep does. When `GET /start` bound the flow to the first browser
(R24), the scanner was that browser and the rep was locked out
(`reason=session_mismatch`). Now a GET only shows this page; the binding
cookie is set on the `POST /start` its button sends, which a scanner that
fetches links does not do. The page has no script, so one that runs
scripts does not post it either.

The page is inert: no script, no external resources, not frameable, no
referrer; the state is HTML-escaped into a hidden field; the form may only
post to this function (and the POST's redirect may only go to Google's
consent endpoint: `form-action`).
"""

from __future__ import annotations

import html
from urllib.parse import urlsplit

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>Connect your Gmail</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 0; min-height: 100vh; display: grid; place-items: center;
       background: #f6f7f9; color: #202124; }}
main {{ background: #fff; padding: 2rem 2.5rem; border-radius: 8px; box-shadow: 0 1px 4px rgba(0,0,0,.15);
       max-width: 28rem; }}
button {{ font-size: 1rem; padding: .6rem 1.4rem; border: 0; border-radius: 4px; background: #1a73e8;
         color: #fff; cursor: pointer; }}
p {{ line-height: 1.5; }}
</style>
</head>
<body>
<main>
<h1>Connect your Gmail</h1>
<p>Your CRM asks to read and send mail with your Gmail account. Continue to Google to choose the account
and review what it may do.</p>
<form method="post" action="start" data-oauth-start>
<input type="hidden" name="state" value="{state}">
<button type="submit" id="continue">Continue to Google</button>
</form>
</main>
</body>
</html>
"""


def render(state: str) -> str:
    return _PAGE.format(state=html.escape(state, quote=True))


def headers(auth_uri: str) -> dict[str, str]:
    """Security headers of the page: inert, unframeable, posting only to us and on to Google's consent."""
    parts = urlsplit(auth_uri)
    google = f"{parts.scheme}://{parts.netloc}"
    return {
        "Content-Security-Policy": ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
                                    f"frame-ancestors 'none'; form-action 'self' {google}"),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",  # the URL carries the state
    }
