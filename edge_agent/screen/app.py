"""The screen's web application (Starlette): a page, its script and style, and a small JSON API over the
access layer. Every view of reads or hits goes through `access` and is audited there; this module only
checks the browser's session and CSRF token and turns refusals into one clear message.

Nothing is fetched from outside the unit: the page, script and style are files of this package, and
images travel inside the JSON as data: URLs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid as uuidlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from edge_agent.access import MAY_SEARCH, AccessDenied, login
from edge_agent.access import duties
from edge_agent.alert.ledger import DISPOSITIONS, NOTE_REQUIRED
from edge_agent.config import Config
from edge_agent.hotlist.parse import LISTS
from edge_agent.screen.feed import ReadFeed
from edge_agent.screen.sessions import ScreenSession, ScreenSessions
from edge_agent.store import Database

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "alpr_screen"
MAX_BODY = 16 * 1024  # a login, a disposition or a plate: nothing larger is needed
KEEP_ALIVE_S = 15.0
# what the page may do: its own files, images inside the data; no inline script, no frames, no other site
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


@dataclass
class ScreenContext:
    """What the screen needs of the running agent."""

    config: Config
    db: Database
    hotlist_db: Database
    feed: ReadFeed
    camera_ids: tuple[str, ...] = ()
    camera_picture: Callable[[str], bytes | None] = lambda camera_id: None
    hotlist_changed: Callable[[], None] = lambda: None
    sessions: ScreenSessions = field(init=False)
    secure: bool = False  # served over HTTPS: the cookie is Secure

    def __post_init__(self) -> None:
        self.sessions = ScreenSessions(self.config.screen.lock_after_s)


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def views_for(role: str) -> list[str]:
    views = ["live", "alerts", "plates"] if role in MAY_SEARCH else []
    return views + (["cameras"] if role in duties.MAY_WATCH_CAMERAS else [])


def data_url(jpeg: bytes | None) -> str | None:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode() if jpeg else None


def screen_app(ctx: ScreenContext) -> Starlette:
    # The database is used from one thread of its own: the event loop never waits on SQLite or argon2.
    worker = ThreadPoolExecutor(1, thread_name_prefix="screen-db")

    async def run(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(worker, fn, *args)

    def session_of(request: Request, touch: bool = True) -> ScreenSession:
        session, why = ctx.sessions.find(request.cookies.get(COOKIE), touch)
        if session is None:
            raise Refused(401, why)
        return session

    def changing(request: Request) -> ScreenSession:
        """A request that changes something: a live session, the page's CSRF token and its own origin."""
        session = session_of(request)
        origin = request.headers.get("origin")
        if origin and urlparse(origin).netloc != request.headers.get("host"):
            raise Refused(403, f"refused: the request came from another site ({origin})")
        if not ctx.sessions.csrf_ok(session, request.headers.get("x-csrf-token")):
            raise Refused(403, "refused: the request does not carry this page's token (reload the page)")
        return session

    async def body(request: Request) -> dict:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise Refused(413, f"refused: the request is larger than {MAX_BODY // 1024} KB")
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            raise Refused(400, "refused: the request is not JSON") from None
        if not isinstance(data, dict):
            raise Refused(400, "refused: the request is not a JSON object")
        return data

    def me(session: ScreenSession) -> dict:
        a = ctx.config.screen
        return {"user": session.access.user, "role": session.access.role, "purpose": session.access.purpose,
                "csrf": session.csrf, "views": views_for(session.access.role), "dispositions": list(DISPOSITIONS),
                "note_required": list(NOTE_REQUIRED), "lists": list(LISTS), "lock_after_s": a.lock_after_s,
                "theme": a.theme, "cameras": list(ctx.camera_ids), "unit": ctx.config.agent.unit_id}

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)

    async def post_login(request: Request) -> Response:
        data = await body(request)
        user, password = str(data.get("user", "")).strip(), str(data.get("password", ""))
        purpose = str(data.get("purpose", "")).strip()[:200]
        if not user or not password:
            raise Refused(400, "give your user name and password")
        try:
            access = await run(login, ctx.db, user, password, purpose, ctx.config.agent.unit_id)
        except AccessDenied as exc:
            raise Refused(401, str(exc)) from None
        if not views_for(access.role):
            raise Refused(403, f"role {access.role} has nothing to see on the screen")
        ctx.sessions.end(request.cookies.get(COOKIE))
        session = ctx.sessions.start(access)
        response = JSONResponse(me(session))
        response.set_cookie(COOKIE, session.token, httponly=True, samesite="strict", secure=ctx.secure, path="/")
        return response

    async def post_logout(request: Request) -> Response:
        session = ctx.sessions.end(request.cookies.get(COOKIE))
        if session is not None:
            await run(ctx.db.audit, session.access.user, "logout", "screen", session.access.purpose,
                      session.access.unit, None)
        response = JSONResponse({"ok": True})
        response.delete_cookie(COOKIE, path="/")
        return response

    async def get_me(request: Request) -> Response:
        return JSONResponse(me(session_of(request)))

    async def post_touch(request: Request) -> Response:
        changing(request)
        return JSONResponse({"ok": True})

    async def events(request: Request) -> Response:
        """Reads and hits as they are stored (for roles that may see them) and the status strip (for all)."""
        session = session_of(request, touch=False)
        reads = session.access.role in MAY_SEARCH
        if reads and not session.live_audited:
            await run(duties.watch_live, ctx.db, session.access)
            session.live_audited = True
        token = session.token
        last = request.headers.get("last-event-id", "")
        subscriber, backlog = ctx.feed.subscribe(int(last) if last.isdigit() else None)
        if not reads:
            backlog = [e for e in backlog if e.kind != "read"]

        async def stream():
            try:
                yield b"retry: 1000\n\n"
                for event in backlog:
                    yield event.wire()
                yield b"event: ready\ndata: {}\n\n"  # what follows happens now
                while True:
                    try:
                        event = await asyncio.wait_for(subscriber.queue.get(), KEEP_ALIVE_S)
                    except asyncio.TimeoutError:
                        if subscriber.dropped:
                            return  # the browser reconnects and is sent what it missed
                        event = None
                    live, why = ctx.sessions.find(token, touch=False)
                    if live is None:  # no plate goes to a locked screen
                        yield f"event: locked\ndata: {json.dumps({'why': why})}\n\n".encode()
                        return
                    if event is None:
                        yield b": keep-alive\n\n"
                    elif reads or event.kind != "read":
                        yield event.wire()
            finally:
                ctx.feed.unsubscribe(subscriber)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={**SECURITY_HEADERS, "x-accel-buffering": "no"})

    async def get_alerts(request: Request) -> Response:
        session = session_of(request)
        alerts = await run(duties.list_alerts, ctx.db, session.access, 50)
        return JSONResponse({"alerts": alerts})

    async def get_alert(request: Request) -> Response:
        session = session_of(request)
        alert = await run(duties.open_alert, ctx.db, session.access, ctx.hotlist_db, _number(request, "alert_id"))
        images = alert.pop("images")
        return JSONResponse({**alert, "scene": data_url(images.get("scene")), "crop": data_url(images.get("plate"))})

    async def post_disposition(request: Request) -> Response:
        session = changing(request)
        alert_id = _number(request, "alert_id")
        data = await body(request)
        request_id = str(data.get("request_id", ""))
        try:
            uuidlib.UUID(request_id)
        except ValueError:
            raise Refused(400, "refused: the request has no request id (reload the page)") from None
        note = str(data.get("note", ""))[:1000]
        result = await run(duties.record_disposition, ctx.db, session.access, alert_id,
                           str(data.get("disposition", "")), note, request_id)
        return JSONResponse(result)

    async def get_read(request: Request) -> Response:
        session = session_of(request)
        read = await run(duties.open_read, ctx.db, session.access, request.path_params["read_id"])
        images = read.pop("images")
        return JSONResponse({**read, "scene": data_url(images.get("scene")), "crop": data_url(images.get("plate"))})

    async def get_plates(request: Request) -> Response:
        session = session_of(request)
        entries = await run(duties.list_officer_plates, ctx.db, session.access, ctx.hotlist_db)
        return JSONResponse({"plates": [e.to_json() for e in entries]})

    async def post_plate(request: Request) -> Response:
        session = changing(request)
        data = await body(request)
        expires = str(data.get("expires") or "") or None
        try:
            expiry = date.fromisoformat(expires) if expires else None
        except ValueError:
            raise Refused(400, f"expiry {expires[:20]!r} is not a date (YYYY-MM-DD)") from None
        entry = await run(lambda: duties.add_officer_plate(
            ctx.db, session.access, ctx.hotlist_db, str(data.get("plate", "")), str(data.get("list", "")),
            str(data.get("reason", ""))[:500], str(data.get("state", "")), expiry))
        ctx.hotlist_changed()
        return JSONResponse(entry.to_json())

    async def delete_plate(request: Request) -> Response:
        session = changing(request)
        entry = await run(duties.remove_officer_plate, ctx.db, session.access, ctx.hotlist_db,
                          _number(request, "entry_id"))
        ctx.hotlist_changed()
        return JSONResponse(entry.to_json())

    async def camera_picture(request: Request) -> Response:
        session = session_of(request, touch=False)
        camera_id = request.path_params["camera_id"]
        if camera_id not in ctx.camera_ids:
            raise Refused(404, f"there is no camera {camera_id[:40]!r}")
        if not session.cameras_audited:
            await run(duties.watch_cameras, ctx.db, session.access)
            session.cameras_audited = True
        jpeg = await run(ctx.camera_picture, camera_id)
        if jpeg is None:
            raise Refused(404, f"camera {camera_id} has given no picture yet")
        return Response(jpeg, media_type="image/jpeg", headers=SECURITY_HEADERS)

    routes = [
        Route("/", index),
        Route("/api/login", post_login, methods=["POST"]),
        Route("/api/logout", post_logout, methods=["POST"]),
        Route("/api/me", get_me),
        Route("/api/touch", post_touch, methods=["POST"]),
        Route("/api/events", events),
        Route("/api/alerts", get_alerts),
        Route("/api/alerts/{alert_id}", get_alert),
        Route("/api/alerts/{alert_id}/dispositions", post_disposition, methods=["POST"]),
        Route("/api/reads/{read_id}", get_read),
        Route("/api/plates", get_plates),
        Route("/api/plates", post_plate, methods=["POST"]),
        Route("/api/plates/{entry_id}", delete_plate, methods=["DELETE"]),
        Route("/api/cameras/{camera_id}/picture.jpg", camera_picture),
        Mount("/static", StaticFiles(directory=STATIC)),
    ]

    async def refused(request: Request, exc: Exception) -> Response:
        # AccessDenied: refused (and audited) by the access layer; ValueError: what was entered is not right
        status = exc.status if isinstance(exc, Refused) else 400 if isinstance(exc, ValueError) else 403
        return JSONResponse({"error": str(exc)}, status, headers=SECURITY_HEADERS)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        ctx.feed.attach(asyncio.get_running_loop())
        try:
            yield
        finally:
            worker.shutdown(wait=False)

    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(SecurityHeaders)],
                    exception_handlers={Refused: refused, AccessDenied: refused, ValueError: refused})
    return app


def _number(request: Request, name: str) -> int:
    raw = request.path_params[name]
    if not raw.isdigit() or len(raw) > 12:
        raise Refused(404, f"{raw[:20]!r} is not a number")
    return int(raw)


class SecurityHeaders:
    """Every response carries SECURITY_HEADERS (a route's own headers win)."""

    def __init__(self, app):
        self.app = app
        self.extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [(k, v) for k, v in self.extra if k not in have]
            await send(message)

        await self.app(scope, receive, with_headers)
