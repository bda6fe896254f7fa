"""Logging in and out, the start page of each role, and the audit log."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.web import audit, auth, fence_sets
from gateway.web.routing import ALL_ROLES, HOME, SUPERVISOR, Page, web_of

LOGIN_COOKIE = "hotspots_login"
#: After this many failed logins for one user name within LOCKOUT_S, logins are refused.
LOCKOUT_FAILURES = 5
LOCKOUT_S = 15 * 60


def home(request: Request) -> Response:
    return RedirectResponse(HOME[request.state.session.user.role], status_code=303)


def login_form(request: Request, error: str = "", status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response = web_of(request).templates.TemplateResponse(
        request, "login.html", {"login_token": token, "error": error,
                                "next": request.query_params.get("next", "")},
        status_code=status)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict",
                        secure=web_of(request).config.secure_cookies, path="/login")
    return response


async def login_submit(request: Request) -> Response:
    web = web_of(request)
    form = await request.form()
    # Login CSRF: the form's token must match the cookie set with the form (double submit).
    token = form.get("login_token", "")
    if not token or token != request.cookies.get(LOGIN_COOKIE):
        return login_form(request, "The form expired: please try again.", 403)
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    address = request.client.host if request.client else ""
    if await web.run(audit.recent_failures, username[:64], LOCKOUT_S) >= LOCKOUT_FAILURES:
        await web.run(audit.record, username[:64], None, "login_failed", "", "locked out",
                      address)
        return login_form(request, f"Too many failed logins for this user: try again in "
                                   f"{LOCKOUT_S // 60} minutes.", 429)
    user = await web.run(auth.authenticate, username, password)
    if user is None:
        await web.run(audit.record, username[:64], None, "login_failed", "", "", address)
        return login_form(request, "Unknown user or wrong password.", 401)
    cookie = await web.run(auth.start_session, user)
    await web.run(audit.record, user.username, user.role, "login", "", "", address)
    target = str(form.get("next", ""))
    if not target.startswith("/") or target.startswith("//"):
        target = HOME[user.role]
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(auth.SESSION_COOKIE, cookie, httponly=True, samesite="strict",
                        secure=web.config.secure_cookies, max_age=auth.SESSION_MAX_S)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


def logout(request: Request) -> Response:
    web = web_of(request)
    web.audit(request, "logout")
    auth.end_session(web.db(), request.cookies.get(auth.SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE)
    return response


def audit_page(request: Request) -> Response:
    web = web_of(request)
    rows = audit.recent(web.db())
    web.audit(request, "view_audit")
    return web.page(request, "audit.html", title="Audit log", rows=rows,
                    edits=fence_sets.edits(web.db()))



ROUTES: list[Page] = [
    Page("/", home, ALL_ROLES),
    Page("/logout", logout, ALL_ROLES, ("POST",)),
    Page("/audit", audit_page, frozenset({SUPERVISOR})),
]
