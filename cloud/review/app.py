"""The review page's HTTP routes (aiohttp): thin handlers over `ReviewReader`.

  GET /                                         the page (web/index.html)
  GET /static/{review.js, review.css}           its script and style
  GET /static/{uplot.js, uplot.css}             the chart library (`npm ci` in web/)
  GET /api/events?device=&camera=&since=&until=&limit=    {"events": [...]}, newest change first
  GET /api/events/{device}/{camera}/{event_id}  {"event", "window", "grid", "frames"}

Errors are JSON `{"error": "..."}` saying what to do: 400 a bad parameter (QueryError "invalid"),
404 no such event or path, 405 a method other than GET, 503 the chart library is not installed,
500 a server bug (logged). Requests are counted by route and status.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter

from vau.cloud.query.model import QueryError, event_key
from vau.cloud.review.model import detail_json, event_json, parse_filter
from vau.cloud.review.reading import ReviewReader

log = logging.getLogger("vau.cloud.review")
WEB = Path(__file__).parent / "web"
UPLOT = WEB / "node_modules" / "uplot" / "dist"
ASSETS = {  # URL name -> (file, content type)
    "review.js": (WEB / "review.js", "text/javascript"),
    "review.css": (WEB / "review.css", "text/css"),
    "uplot.js": (UPLOT / "uPlot.iife.min.js", "text/javascript"),
    "uplot.css": (UPLOT / "uPlot.min.css", "text/css"),
}
MISSING_CHART = (
    "the review page's chart library is not installed on this server: run `make install` "
    "(or `npm ci` in cloud/review/web) and reload"
)
_STATUS = {"invalid": 400, "not_found": 404}
_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'",
}
READER = web.AppKey("reader", ReviewReader)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def chart_missing() -> bool:
    return not all(path.is_file() for path, _ in (ASSETS["uplot.js"], ASSETS["uplot.css"]))


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=_HEADERS)


class ReviewMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "vau_cloud_http_requests_total",
            "Review page requests by route and HTTP status (4xx: bad requests, 5xx: failures).",
            ["route", "status"],
            registry=registry,
        )


def _middleware(metrics: ReviewMetrics) -> Middleware:
    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        info = request.match_info.route.resource
        route = info.canonical if info is not None else "other"
        try:
            response = await handler(request)
        except QueryError as exc:
            response = _error(_STATUS.get(exc.reason, 400), str(exc))
        except web.HTTPException as exc:
            response = _error(exc.status, f"{exc.reason}: {request.method} {request.path}")
        except Exception:
            log.exception("review page: %s %s failed", request.method, request.path)
            response = _error(500, "internal error; retry (the server logged it)")
        metrics.requests.labels(route, str(response.status)).inc()
        return response

    return errors


async def page(_request: web.Request) -> web.StreamResponse:
    return web.FileResponse(WEB / "index.html", headers=_HEADERS)


async def asset(request: web.Request) -> web.StreamResponse:
    found = ASSETS.get(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound()
    path, content_type = found
    if not path.is_file():
        return _error(503, MISSING_CHART)
    return web.FileResponse(path, headers={**_HEADERS, "Content-Type": content_type})


async def events(request: web.Request) -> web.StreamResponse:
    f = parse_filter(request.query)
    views = await request.app[READER].events(f)
    return web.json_response({"events": [event_json(v) for v in views]}, headers=_HEADERS)


async def event(request: web.Request) -> web.StreamResponse:
    m = request.match_info
    key = event_key(m["device"], m["camera"], m["event_id"])
    detail = await request.app[READER].detail(key)
    if detail is None:
        raise QueryError(
            "not_found", f"no event {'/'.join(key)}: list /api/events to see which exist"
        )
    return web.json_response(detail_json(detail), headers=_HEADERS)


def build_app(reader: ReviewReader, registry: CollectorRegistry) -> web.Application:
    app = web.Application(middlewares=[_middleware(ReviewMetrics(registry))])
    app[READER] = reader
    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", asset)
    app.router.add_get("/api/events", events)
    app.router.add_get("/api/events/{device}/{camera}/{event_id:.+}", event)
    return app
