"""Shared set-up for the web app tests: a database file with one account per role, the app, and
logged-in clients (the real login form, its token and cookie)."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.testclient import TestClient

from gateway.schema import open_db
from gateway.web import auth
from gateway.web.app import WebConfig, create_app

SAMPLE_FENCES = Path(__file__).resolve().parent.parent / "fences" / "sample.geojson"
PASSWORD = "correct horse battery"
ROLE_USERS = {"supervisor": "sue", "staff": "stan", "analyst": "ann"}


def make_db(path: Path) -> Path:
    db = open_db(str(path))
    for role, name in ROLE_USERS.items():
        auth.add_user(db, name, role, PASSWORD)
    db.conn.close()
    return path


def make_app(db_path: Path, **kw):
    return create_app(WebConfig(str(db_path), fences_path=str(SAMPLE_FENCES), **kw))


def login(client: TestClient, username: str, password: str = PASSWORD):
    form = client.get("/login")
    token = re.search(r'name="login_token" value="([^"]+)"', form.text).group(1)
    return client.post("/login", data={"username": username, "password": password,
                                       "login_token": token}, follow_redirects=False)


def csrf_of(client: TestClient) -> str:
    page = client.get("/", follow_redirects=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text).group(1)
