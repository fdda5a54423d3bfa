"""The `oauth_browser` function: the rep's browser on its way to Google and back (R1, R24).

The only public routes of the connect flow (no IAM, no API key: a browser
carries neither), each trusting nothing but a state we signed:

  GET /start     ?state (the CRM's authorizationUrl) -> sets the session cookie, 302 to Google's consent
  GET /callback  ?code&state (Google's redirect)     -> 302 returnUrl?status=connected | status=error&reason=…

A forged or tampered state gets a 400 JSON answer (its returnUrl cannot be
trusted, so no redirect); every later refusal redirects to the signed
returnUrl with `status=error&reason=<code>` and leaves nothing half-written.
The operations are shared/connect/consent.py and shared/connect/callback.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.http.answers import ApiError, handles_errors

if TYPE_CHECKING:
    import flask

    from shared.connect.consent import BrowserStep


@handles_errors
def handle(request: flask.Request) -> Any:
    route = ROUTES.get(request.path.rstrip("/") or "/")
    if route is None:
        raise ApiError(404, "not_found", f"no route {request.path}")
    if request.method != "GET":
        raise ApiError(405, "method_not_allowed", f"{request.path} accepts GET only", allow="GET")
    return _redirect(route(request))  # a StateRejected is its own 400 answer (handles_errors)


def start(request: flask.Request) -> BrowserStep:
    from shared.connect.consent import start_consent

    return start_consent(request.args.get("state", ""), request.cookies)


def callback(request: flask.Request) -> BrowserStep:
    from shared.connect.callback import finish_callback

    return finish_callback(request.args, request.cookies)


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


ROUTES: dict[str, Any] = {"/start": start, "/callback": callback}
