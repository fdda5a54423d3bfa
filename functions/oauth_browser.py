"""The `oauth_browser` function: the rep's browser on its way to Google and back (R1, R24).

The only public routes of the connect flow (no IAM, no API key: a browser
carries neither), each trusting nothing but a state we signed:

  GET  /start     ?state (the CRM's authorizationUrl) -> 200, a page whose button posts the state back
  POST /start     state (the page's form)             -> sets the session cookie, 302 to Google's consent
  GET  /callback  ?code&state (Google's redirect)     -> 302 returnUrl?status=connected | status=error&reason=…

A GET of `/start` binds nothing (issue 23): a mail link scanner that opens the
URL before the rep does no harm; the binding happens on the button's POST,
which a browser sends from the page itself (a cross-site POST is refused:
`Sec-Fetch-Site`). A forged or tampered state gets a 400 JSON answer (its
returnUrl cannot be trusted, so no redirect); every later refusal redirects
to the signed returnUrl with `status=error&reason=<code>` and leaves nothing
half-written. The operations are shared/connect/consent.py and
shared/connect/callback.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.http.answers import ApiError, handles_errors

if TYPE_CHECKING:
    import flask

    from shared.connect.consent import BrowserStep, ContinuePage


@handles_errors
def handle(request: flask.Request) -> Any:
    from shared.connect.consent import BrowserStep

    methods = ROUTES.get(request.path.rstrip("/") or "/")
    if methods is None:
        raise ApiError(404, "not_found", f"no route {request.path}")
    route = methods.get(request.method)
    if route is None:
        allow = ", ".join(methods)
        raise ApiError(405, "method_not_allowed", f"{request.path} accepts {allow} only", allow=allow)
    step = route(request)  # a StateRejected is its own 400 answer (handles_errors)
    return _redirect(step) if isinstance(step, BrowserStep) else _page(step)


def start_page(request: flask.Request) -> BrowserStep | ContinuePage:
    from shared.connect.consent import consent_page

    return consent_page(request.args.get("state", ""))


def start(request: flask.Request) -> BrowserStep:
    from shared.connect.consent import start_consent

    if request.headers.get("Sec-Fetch-Site", "same-origin").lower() not in ("same-origin", "none"):
        raise ApiError(403, "cross_site_request", "continue from the page /start shows, not from another site")
    state = request.form.get("state") or request.args.get("state", "")
    return start_consent(state, request.cookies)


def callback(request: flask.Request) -> BrowserStep:
    from shared.connect.callback import finish_callback

    return finish_callback(request.args, request.cookies)


def _page(page: ContinuePage) -> Any:
    import flask

    from shared.connect import start_page as markup
    from shared.core.config import get_config

    resp = flask.Response(markup.render(page.state), status=200, mimetype="text/html")
    resp.headers.update(markup.headers(get_config().oauth_auth_uri))
    return resp


def _redirect(step: BrowserStep) -> Any:
    import flask

    resp = flask.redirect(step.location, code=302)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"  # these URLs carry the state and the code
    if step.cookie is not None:
        c = step.cookie
        if c.max_age > 0:
            resp.set_cookie(c.name, c.value, max_age=c.max_age, path="/", secure=c.secure, httponly=True,
                            samesite="Lax")
        else:
            resp.delete_cookie(c.name, path="/", secure=c.secure, httponly=True, samesite="Lax")
    return resp


ROUTES: dict[str, dict[str, Any]] = {
    "/start": {"GET": start_page, "POST": start},
    "/callback": {"GET": callback},
}
