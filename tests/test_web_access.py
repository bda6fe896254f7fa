"""Access control of the web app: every page and API refuses a request without a session or
with the wrong role, and state-changing requests without the session's CSRF token.

The tests walk the application's own route table, so a route added without a rule (or outside
the guard) fails here."""

from __future__ import annotations

import pytest
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from gateway.web import auth
from gateway.web.app import PUBLIC_PATHS, ROUTES
from tests.web_fixtures import PASSWORD, ROLE_USERS, csrf_of, login, make_app, make_db

CASES = [(rule, method) for rule in ROUTES for method in rule.methods]


def _url(path: str) -> str:
    return path.replace("{name}", "visits.csv")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return make_app(make_db(tmp_path_factory.mktemp("web") / "gateway.db"))


@pytest.fixture(scope="module")
def clients(app):
    out = {}
    for role, name in ROLE_USERS.items():
        client = TestClient(app)
        assert login(client, name).status_code == 303
        out[role] = client
    yield out
    for client in out.values():
        client.close()


def test_every_route_is_guarded_or_public(app):
    guarded = {(r.path, m) for r in ROUTES for m in r.methods}
    for route in app.routes:
        if isinstance(route, Mount):
            assert route.path in PUBLIC_PATHS, f"{route.path} is mounted without a rule"
            continue
        assert isinstance(route, Route)
        rule = getattr(route.endpoint, "rule", None)
        if rule is None:
            assert route.path in PUBLIC_PATHS, f"{route.path} has no access rule"
            continue
        for method in route.methods - {"HEAD"}:
            assert (route.path, method) in guarded
        assert rule.roles and rule.roles <= set(auth.ROLES)


@pytest.mark.parametrize("rule,method", CASES, ids=[f"{m} {r.path}" for r, m in CASES])
def test_refused_without_a_session(app, rule, method):
    with TestClient(app) as anonymous:
        response = anonymous.request(method, _url(rule.path), follow_redirects=False)
    if rule.api or method != "GET":
        assert response.status_code == 401
    else:
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("rule,method", CASES, ids=[f"{m} {r.path}" for r, m in CASES])
def test_refused_with_a_forged_cookie(app, rule, method):
    with TestClient(app, cookies={auth.SESSION_COOKIE: "made-up"}) as forged:
        response = forged.request(method, _url(rule.path), follow_redirects=False)
    assert response.status_code in (303, 401)


WRONG = [(rule, method, role) for rule, method in CASES for role in auth.ROLES
         if role not in rule.roles]


@pytest.mark.parametrize("rule,method,role", WRONG,
                         ids=[f"{m} {r.path} as {role}" for r, m, role in WRONG])
def test_refused_with_the_wrong_role(clients, rule, method, role):
    client = clients[role]
    headers = {"X-CSRF-Token": csrf_of(client)} if method != "GET" else {}
    response = client.request(method, _url(rule.path), headers=headers, follow_redirects=False)
    assert response.status_code == 403, response.text


RIGHT = [(rule, method, role) for rule, method in CASES for role in sorted(rule.roles)
         if method == "GET" and "events" not in rule.path]


@pytest.mark.parametrize("rule,method,role", RIGHT,
                         ids=[f"{m} {r.path} as {role}" for r, m, role in RIGHT])
def test_allowed_with_the_right_role(clients, rule, method, role):
    response = clients[role].request(method, _url(rule.path), follow_redirects=False)
    assert response.status_code in (200, 303), response.text[:300]
    assert response.headers["cache-control"] == "no-store"


POSTS = [(rule, method) for rule, method in CASES if method != "GET"]


@pytest.mark.parametrize("rule,method", POSTS, ids=[f"{m} {r.path}" for r, m in POSTS])
def test_state_changes_need_the_csrf_token(clients, rule, method):
    role = sorted(rule.roles)[0]
    client = clients[role]
    for headers in ({}, {"X-CSRF-Token": "wrong"}):
        response = client.request(method, _url(rule.path), headers=headers, json={},
                                  follow_redirects=False)
        assert response.status_code == 403
        assert "CSRF" in response.json()["error"]


def test_security_headers_forbid_inline_script_and_framing(clients):
    response = clients["supervisor"].get("/live")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    assert response.headers["x-frame-options"] == "DENY"
    assert "<script>" not in response.text  # no inline script: the CSP would block it


def test_login_refuses_wrong_password_and_records_it(app):
    with TestClient(app) as client:
        response = login(client, "sue", "not the password")
        assert response.status_code == 401
        assert "wrong password" in response.text
        assert auth.SESSION_COOKIE not in client.cookies
        assert client.get("/live", follow_redirects=False).status_code == 303
    db = app.state.web.db()
    rows = db.execute("SELECT username, action FROM audit_log WHERE action = 'login_failed'"
                      ).fetchall()
    assert ("sue", "login_failed") in rows


def test_login_form_needs_its_own_token(app):
    with TestClient(app) as client:
        client.get("/login")
        response = client.post("/login", data={"username": "sue", "password": PASSWORD,
                                                "login_token": "forged"})
        assert response.status_code == 403


def test_login_redirects_only_inside_the_site(app):
    with TestClient(app) as client:
        import re

        token = re.search(r'name="login_token" value="([^"]+)"',
                          client.get("/login").text).group(1)
        response = client.post("/login", data={"username": "sue", "password": PASSWORD,
                                                "login_token": token,
                                                "next": "//evil.example/"},
                               follow_redirects=False)
        assert response.headers["location"] == "/live"


def test_logout_ends_the_session(app):
    with TestClient(app) as client:
        login(client, "ann")
        token = client.cookies[auth.SESSION_COOKIE]
        assert client.get("/day").status_code == 200
        response = client.post("/logout", data={"csrf": csrf_of(client)},
                               follow_redirects=False)
        assert response.status_code == 303
    with TestClient(app, cookies={auth.SESSION_COOKIE: token}) as replay:
        assert replay.get("/day", follow_redirects=False).status_code == 303


def test_disabling_a_user_ends_their_session_at_once(app, tmp_path):
    db = app.state.web.db()
    auth.add_user(db, "temp", "analyst", PASSWORD)
    with TestClient(app) as client:
        login(client, "temp")
        assert client.get("/day").status_code == 200
        auth.set_disabled(db, "temp", True)
        assert client.get("/day", follow_redirects=False).status_code == 303
