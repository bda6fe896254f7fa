"""The route table's vocabulary: roles, :class:`Page` and :class:`Api` rules, and the app
state a handler reaches through its request. Each module of :mod:`gateway.web.pages` lists its
routes with these; :mod:`gateway.web.app` puts them behind the guard."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request

from gateway.web import auth

if TYPE_CHECKING:
    from gateway.web.app import WebApp

SUPERVISOR, STAFF, ANALYST = auth.ROLES
ALL_ROLES = frozenset(auth.ROLES)
#: Where each role lands after logging in.
HOME = {SUPERVISOR: "/live", STAFF: "/fleet", ANALYST: "/day"}


@dataclass(frozen=True)
class Page:
    """An HTML page for ``roles``; without a session: redirect to the login page."""

    path: str
    handler: Callable
    roles: frozenset[str]
    methods: tuple[str, ...] = ("GET",)
    api: bool = False


@dataclass(frozen=True)
class Api(Page):
    """JSON, a download or an event stream for ``roles``; without a session: 401."""

    api: bool = True


def web_of(request: Request) -> WebApp:
    """The app's shared state (config, database connections, templates)."""
    return request.app.state.web
