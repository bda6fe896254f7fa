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


class LiveServer:
    """The app served by a real uvicorn on a free loopback port, in a thread."""

    def __init__(self, app) -> None:
        import socket
        import threading

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="on",
                                                    timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def session_cookie(server_url: str, username: str, password: str = PASSWORD) -> str:
    """Log in through the real form over HTTP; returns the session cookie's value."""
    import httpx2 as httpx

    with httpx.Client(base_url=server_url) as client:
        login(client, username, password)
        return client.cookies[auth.SESSION_COOKIE]
