"""The live map (positions over server-sent events) and the fleet table."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from gateway.web import audit, auth, live
from gateway.web.routing import STAFF, SUPERVISOR, Api, Page, web_of

#: How often the event stream looks for new fixes, seconds.
POLL_S = 0.2
#: How often the event stream sends the fleet table again.
FLEET_EVERY_S = 10.0
#: A quiet stream gets a comment this often, and every stream re-checks its session.
HEARTBEAT_S = 15.0


def live_page(request: Request) -> Response:
    return web_of(request).page(request, "live.html", title="Live")


def live_api(request: Request) -> Response:
    web = web_of(request)
    snap = live.snapshot(web.db())
    web.audit(request, "view_live", audit.officers_subject(
        {f["officer"] for f in snap["fixes"] if f["officer"]} | _fleet_officers(snap.get("fleet"))),
        f"{len(snap['fixes'])} devices")
    return JSONResponse(snap)


async def live_events(request: Request) -> Response:
    web = web_of(request)
    token = request.cookies.get(auth.SESSION_COOKIE)
    queue, snap = await web.broadcaster.subscribe()
    # Whose positions the page is shown now; new officers appear as they report.
    shown = {f["officer"] for f in snap["fixes"] if f["officer"]} | _fleet_officers(
        snap.get("fleet"))
    await run_in_threadpool(
        web.audit, request, "view_live", audit.officers_subject(shown),
        f"live event stream, {len(snap['fixes'])} devices")

    async def stream():
        try:
            yield "retry: 2000\n\n"
            checked = time.monotonic()
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    item = None
                # A stream outlives the request that opened it: a logged-out, expired or
                # disabled session stops receiving positions within HEARTBEAT_S.
                if time.monotonic() - checked >= HEARTBEAT_S:
                    checked = time.monotonic()
                    if await web.run(auth.find_session, token) is None:
                        yield "event: ended\ndata: {\"error\": \"session ended\"}\n\n"
                        return
                if item is None:
                    yield ": heartbeat\n\n"
                    continue
                event, data, officers = item
                # An officer who starts reporting after the page opened is recorded as
                # viewed when their first position is sent, not only those shown at first.
                new = officers - shown
                if new:
                    shown.update(new)
                    await run_in_threadpool(web.audit, request, "view_live",
                                            audit.officers_subject(new),
                                            f"live event stream, {event}: newly shown")
                yield f"event: {event}\ndata: {data}\n\n"
        finally:
            web.broadcaster.unsubscribe(queue)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _fleet_officers(fleet: dict | None) -> set[str]:
    """Officers the fleet table names: who carries which device, and for a tracker not
    returned, where it was last (a position of theirs)."""
    return {d["officer"] for d in (fleet or {}).get("devices", ()) if d.get("officer")}


def fleet_page(request: Request) -> Response:
    web = web_of(request)
    now = time.time()
    _, fence_row = live.hotspots_now(web.db(), now)
    data = live.fleet(web.db(), now, fence_row["version"] if fence_row else None)
    web.audit(request, "view_fleet", audit.officers_subject(_fleet_officers(data)),
              f"{len(data['devices'])} devices")
    return web.page(request, "fleet.html", title="Fleet", fleet=data, fence_set=fence_row)


def fleet_api(request: Request) -> Response:
    web = web_of(request)
    now = time.time()
    _, fence_row = live.hotspots_now(web.db(), now)
    data = live.fleet(web.db(), now, fence_row["version"] if fence_row else None)
    web.audit(request, "view_fleet", audit.officers_subject(_fleet_officers(data)),
              f"{len(data['devices'])} devices")
    return JSONResponse(data)



@dataclass
class Broadcaster:
    """One poller for every open live page: new fixes are read once and sent to all.

    It looks for new ``positions`` rows every :data:`POLL_S`, sends them as a ``fixes`` event
    with the hot spots being patrolled, and the fleet table every :data:`FLEET_EVERY_S`.
    """

    web: object  # gateway.web.app.WebApp
    queues: set = field(default_factory=set)
    task: asyncio.Task | None = None
    last_id: int = 0
    last_transition_id: int = 0
    latest: dict = field(default_factory=dict)

    async def subscribe(self) -> tuple[asyncio.Queue, dict]:
        """A queue of ``(event, data)`` starting with a snapshot, and that snapshot."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=100)
        snap = await self.web.run(live.snapshot)
        queue.put_nowait(("snapshot", json.dumps(snap), frozenset()))
        self.queues.add(queue)
        if self.task is None or self.task.done():
            self.last_id = snap["last_id"]
            self.last_transition_id = snap["last_transition_id"]
            self.latest = {f["device_id"]: f for f in snap["fixes"]}
            self.task = asyncio.create_task(self._run())
        return queue, snap

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self.queues.discard(queue)

    def _send(self, event: str, payload: dict, officers: frozenset = frozenset()) -> None:
        """To every open stream: ``(event, JSON text, officers whose positions it shows)``."""
        data = json.dumps(payload)
        for queue in list(self.queues):
            if queue.full():  # a stalled browser: drop it rather than hold memory
                self.queues.discard(queue)
                continue
            queue.put_nowait((event, data, officers))

    def _poll(self) -> tuple[list[dict], dict] | None:
        """New fixes and who is where, or None when nothing was stored since the last look."""
        db = self.web.db()
        crossed = live.max_transition_id(db)
        if live.max_position_id(db) <= self.last_id and crossed <= self.last_transition_id:
            return None
        self.last_transition_id = crossed
        fixes = live.fixes_after(db, self.last_id)
        if fixes:
            self.last_id = fixes[-1]["id"]
        now = time.time()
        for f in fixes:
            old = self.latest.get(f["device_id"])
            if old is None or f["tst"] >= old["tst"]:
                self.latest[f["device_id"]] = f
        spots, _ = live.hotspots_now(db, now)
        return fixes, live.patrolled(list(self.latest.values()), spots, now,
                                     crossings=live.inside_by_transitions(db, now))

    def _fleet(self) -> dict:
        now = time.time()
        _, fence_row = live.hotspots_now(self.web.db(), now)
        return live.fleet(self.web.db(), now, fence_row["version"] if fence_row else None)

    async def _run(self) -> None:
        next_fleet = time.monotonic() + FLEET_EVERY_S
        while self.queues:
            try:
                news = await run_in_threadpool(self._poll)
                if news is not None:
                    self._send("fixes", {"fixes": news[0], "patrolled": news[1],
                                         "sent_at": time.time()},
                               frozenset(f["officer"] for f in news[0] if f["officer"]))
                if time.monotonic() >= next_fleet:
                    next_fleet = time.monotonic() + FLEET_EVERY_S
                    fleet = await run_in_threadpool(self._fleet)
                    self._send("fleet", fleet, frozenset(_fleet_officers(fleet)))
            except Exception as exc:  # a locked or busy database: say so, try again
                self._send("problem", {"error": str(exc)})
            await asyncio.sleep(POLL_S)



ROUTES: list[Page] = [
    Page("/live", live_page, frozenset({SUPERVISOR})),
    Api("/api/live", live_api, frozenset({SUPERVISOR})),
    Api("/api/live/events", live_events, frozenset({SUPERVISOR})),
    Page("/fleet", fleet_page, frozenset({SUPERVISOR, STAFF})),
    Api("/api/fleet", fleet_api, frozenset({SUPERVISOR, STAFF})),
]
