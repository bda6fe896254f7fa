"""The web app's pages and APIs, one module per area, each with its ``ROUTES``:
:mod:`~gateway.web.pages.account` (login, logout, start page, audit log),
:mod:`~gateway.web.pages.live` (live map, event stream, fleet),
:mod:`~gateway.web.pages.day` (any day's reports and downloads),
:mod:`~gateway.web.pages.fences` (the fence editor),
:mod:`~gateway.web.pages.plan` (harm map, proposals, taskings, one hot spot's report)."""

from gateway.web.pages import account, day, fences, live, plan
from gateway.web.routing import Page

ROUTES: list[Page] = [*account.ROUTES, *live.ROUTES, *day.ROUTES, *fences.ROUTES,
                     *plan.ROUTES]
