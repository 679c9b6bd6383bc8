"""The Starlette application: routes, token check, headers. The only module that imports Starlette.

Starlette (on uvicorn, ``server.py``) because the API is a handful of read-only routes:
a small, maintained ASGI toolkit with routing, static files and an OpenAPI schema
generator, and no ORM or template engine to carry. Handlers are plain functions over
:class:`~driftline.api.views.Views`; the store is read through its own engine, so a
request never touches the consumer's connection.
"""

from __future__ import annotations

import base64
import hmac
import importlib.util
import logging
from pathlib import Path
from urllib.parse import quote, unquote, unquote_to_bytes

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.schemas import SchemaGenerator
from starlette.staticfiles import StaticFiles

from driftline.api.params import BadRequest
from driftline.api.views import NotFound, Views
from driftline.errors import StoreError

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
OPEN = ("/healthz", "/readyz")  # probes answer without the token; they say nothing about the data
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


def plotly_js() -> Path:
    """plotly.min.js as the plotly wheel ships it (MIT), found without importing plotly."""
    spec = importlib.util.find_spec("plotly")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


class Json(Response):
    media_type = "application/json"

    def render(self, content) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def _error(status: int, message: str) -> Json:
    return Json({"error": message}, status_code=status)


def _authorized(header: str, token: str) -> bool:
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":  # a browser's own prompt: any user name, the token as password
        try:
            value = base64.b64decode(value, validate=True).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return False
    elif scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.encode(), token.encode())


class Guard(BaseHTTPMiddleware):
    """Read-only, token-checked (constant time) when a token is set, strict headers."""

    def __init__(self, app, token: str | None):
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request, call_next):
        if request.method not in ("GET", "HEAD"):
            return _error(405, "read-only: only GET and HEAD")
        if self.token and request.url.path not in OPEN and not _authorized(
                request.headers.get("authorization", ""), self.token):
            return Response("token required", 401, {"WWW-Authenticate": 'Basic realm="driftline"'})
        response = await call_next(request)
        response.headers.update({"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                                 "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"})
        return response


class RawSegments:
    """Route on the raw path, so a name with ``/`` in it (a version ``2026/11``, sent as ``%2F``)
    stays one path segment: each segment is decoded, then only ``%`` and ``/`` are escaped
    again for the router, and :func:`_handler` unescapes the path parameters once."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if raw:
            segments = raw.split(b"?", 1)[0].split(b"/")
            path = "/".join(unquote_to_bytes(seg).decode("utf-8", "replace").replace("%", "%25").replace("/", "%2F")
                            for seg in segments)
            scope = dict(scope, path=path)
        await self.app(scope, receive, send)


def _handler(fn):
    def endpoint(request: Request):  # sync: Starlette runs it in its thread pool
        params = {k: unquote(v) if isinstance(v, str) else v for k, v in request.path_params.items()}
        try:
            return Json(fn(request, params, request.query_params))
        except BadRequest as exc:
            return _error(400, str(exc))
        except NotFound as exc:
            return _error(404, str(exc))
        except StoreError as exc:
            return _error(503, f"store unavailable: {exc}")
    endpoint.__doc__ = fn.__doc__
    return endpoint


def _api(views: Views) -> list[Route]:
    def models(r, a, q):
        """
        summary: "Every model version with its status (firing while an alert or incident fires), last window, recent
          window counts, firing alerts and firing_incidents (how many of its incidents fire)."
        responses: {200: {description: "{items: [...]}"}}
        """
        return views.models()

    def windows(r, a, q):
        """
        summary: "A model version's windows overlapping [from, to) (ISO-8601 or epoch ms), without summaries, paged."
        parameters: [{name: from, in: query}, {name: to, in: query}, {name: limit, in: query, description: 1..1000},
                     {name: after, in: query, description: "the previous page's next"}]
        responses: {200: {description: "{items, next}"}, 400: {description: bad parameter}, 404: {description: unknown}}
        """
        return views.windows(a["model"], a["version"], q)

    def series(r, a, q):
        """
        summary: "One feature's (or prediction's, multivariate's) drift statistic per window against its threshold,
          downsampled in SQL to at most `points` (2..2000, default 500) buckets."
        parameters: [{name: from, in: query}, {name: to, in: query}, {name: points, in: query}]
        responses: {200: {description: "{windows, per_point, points}"}, 400: {description: bad parameter}}
        """
        return views.series(a["model"], a["version"], a["subject"], q)

    def window(r, a, q):
        """
        summary: One window's full summary, with reference-vs-window histograms per feature.
        responses: {200: {description: "{id, summary, histograms}"}, 404: {description: no such window}}
        """
        return views.window(a["id"])

    def alerts(r, a, q):
        """
        summary: "Alert state changes (by window end in [from, to)), each with its deliveries and receipts; current states."
        parameters: [{name: model, in: query}, {name: from, in: query}, {name: to, in: query},
                     {name: limit, in: query}, {name: after, in: query}]
        responses: {200: {description: "{items, next, states}"}}
        """
        return views.alerts(q)

    def triggers(r, a, q):
        """
        summary: Retraining triggers (CloudEvents) with their deliveries, paged by window end.
        parameters: [{name: model, in: query}, {name: limit, in: query}, {name: after, in: query}]
        responses: {200: {description: "{items, next}"}}
        """
        return views.triggers(q)

    def incidents(r, a, q):
        """
        summary: "Incidents (alerts grouped by alerts.group_by) open at some time in [from, to), newest first by
          updated_at, each with its deliveries (the outbox rows of its notifications, per sink: event, status,
          attempts, last_error, receipt, created_at, sent_at) and its retraining trigger (CloudEvent id, status)."
        parameters: [{name: model, in: query}, {name: status, in: query, description: "firing or resolved"},
                     {name: from, in: query}, {name: to, in: query}, {name: limit, in: query, description: 1..1000},
                     {name: after, in: query, description: "the previous page's next ({updated_at},{id})"}]
        responses: {200: {description: "{items, next}"}, 400: {description: bad parameter}}
        """
        return views.incidents(q)

    def incident(r, a, q):
        """
        summary: "One incident: its snapshot, deliveries, trigger (with the CloudEvent) and timeline (its alert
          events and notifications in event time, each notification with its delivery per sink)."
        responses: {200: {description: "{id, ..., deliveries, trigger, timeline}"}, 404: {description: no such incident}}
        """
        return views.incident(a["id"])

    def silences(r, a, q):
        """
        summary: "Silences in force now and those starting later (with all=1 also ended ones), the soonest to end
          first: id, matchers as text (model=\\\"fraud\\\"), state (active, pending or expired), starts_at,
          ends_at, created_at, expired_at (epoch seconds, and each as *_iso), author, comment. model: only the
          silences whose model matchers accept that model."
        parameters: [{name: model, in: query}, {name: all, in: query}]
        responses: {200: {description: "{items: [{id, matchers, state, starts_at, ends_at, author, comment, …}]}"}}
        """
        return views.silences(q)

    def performance(r, a, q):
        """
        summary: "A model's realized performance per window (the performance line's fields; enough by the current
          labels.min_labelled), the newest `limit` windows oldest first; labels false when none are configured."
        parameters: [{name: version, in: query, description: "one version (default: all)"},
                     {name: segment, in: query, description: "FEATURE=VALUE (default: the whole version)"},
                     {name: limit, in: query, description: "1..1000, default 100"}]
        responses: {200: {description: "{model, labels, min_labelled, headline_metrics, items}"},
                    400: {description: bad parameter}, 404: {description: unknown model or version}}
        """
        return views.performance(a["model"], q)

    def lag(r, a, q):
        """
        summary: "Consumer lag per partition (the high watermark minus the offset the store has committed), when
          served by driftline run; under driftline ui, available is false."
        responses: {200: {description: "{available, reason, items: [{topic, partition, lag}], total}"}}
        """
        return views.lag()

    v = "/api/v1"
    return [Route(f"{v}/models", _handler(models)),
            Route(f"{v}/models/{{model}}/versions/{{version}}/windows", _handler(windows)),
            Route(f"{v}/models/{{model}}/performance", _handler(performance)),
            Route(f"{v}/models/{{model}}/versions/{{version}}/subjects/{{subject}}/series", _handler(series)),
            Route(f"{v}/windows/{{id:int}}", _handler(window)),
            Route(f"{v}/alerts", _handler(alerts)), Route(f"{v}/triggers", _handler(triggers)),
            Route(f"{v}/silences", _handler(silences)), Route(f"{v}/lag", _handler(lag)),
            Route(f"{v}/incidents", _handler(incidents)), Route(f"{v}/incidents/{{id}}", _handler(incident))]


def _page(name: str):
    def page(request: Request) -> FileResponse:
        return FileResponse(STATIC / name, media_type="text/html")
    return page


LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]


def _model_page(views: Views):
    def page(request: Request):
        """``/models/{model}``: its newest version's page (a model that has none yet: 404)."""
        model = request.path_params["model"]
        versions = [v for v in views.models()["items"] if v["model"] == model and v["version"] is not None]
        if not versions:
            return _error(404, f"no windows stored for model {model!r}")
        newest = max(versions, key=lambda v: v["last_window_end"] or "")
        return RedirectResponse(f"/models/{quote(model, safe='')}/{quote(newest['version'], safe='')}", 302)
    return page


def build_app(views: Views, ready, metrics_text, token: str | None = None,
              allowed_hosts: list[str] | None = None) -> RawSegments:
    """``ready()`` → (bool, reason); ``metrics_text()`` → Prometheus text. ``allowed_hosts``:
    the ``Host`` header values answered (others get 400, so a page on another site cannot
    reach a dashboard on localhost through DNS rebinding); ``None`` answers any."""
    schemas = SchemaGenerator({"openapi": "3.0.0", "info": {"title": "driftline", "version": "1"}})

    def healthz(request: Request) -> Json:
        return Json({"status": "alive"})

    def readyz(request: Request) -> Json:
        ok, reason = ready()
        return Json({"ready": ok, "reason": reason}, status_code=200 if ok else 503)

    def metrics(request: Request) -> PlainTextResponse:
        return PlainTextResponse(metrics_text(), media_type="text/plain; version=0.0.4")

    def openapi(request: Request) -> Json:
        return Json(schemas.get_schema(routes=app.routes))

    routes = _api(views) + [
        Route("/api/v1/openapi.json", openapi, include_in_schema=False),
        Route("/healthz", healthz, include_in_schema=False), Route("/readyz", readyz, include_in_schema=False),
        Route("/metrics", metrics, include_in_schema=False),
        Route("/", _page("fleet.html"), include_in_schema=False),
        Route("/models/{model}/{version}", _page("model.html"), include_in_schema=False),
        Route("/models/{model}", _model_page(views), include_in_schema=False),
        Route("/incidents", _page("incidents.html"), include_in_schema=False),
        Route("/static/plotly.min.js", lambda r: FileResponse(plotly_js(), media_type="text/javascript"),
              include_in_schema=False),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    hosts = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)] if allowed_hosts is not None else []
    app = Starlette(routes=routes, middleware=[*hosts, Middleware(Guard, token=token)])
    return RawSegments(app)
