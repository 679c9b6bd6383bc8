"""/readyz goes false while the store is unreachable (a TCP proxy cut in front of
PostgreSQL) and true again when it returns; /healthz stays alive throughout."""

import time
from urllib.parse import urlsplit, urlunsplit

import httpx

from driftline.app import build_http
from driftline.config import parse_settings
from tests.helpers import config
from tests.proxy import TcpProxy


def _through(url: str, port: int) -> str:
    u = urlsplit(url)
    return urlunsplit(u._replace(netloc=f"{u.username}:{u.password}@127.0.0.1:{port}"))


def _ready(client) -> tuple[int, dict]:
    r = client.get("/readyz")
    return r.status_code, r.json()


def test_readiness_follows_the_store(postgres_url):
    u = urlsplit(postgres_url)
    proxy = TcpProxy((u.hostname, u.port or 5432))
    settings = parse_settings(config(store={"url": _through(postgres_url, proxy.port)}), {})
    server = build_http(settings, port=0)
    try:
        with httpx.Client(base_url=server.url, timeout=20) as c:
            assert _ready(c) == (200, {"ready": True, "reason": "store reachable"})
            proxy.down()
            status, body = _ready(c)
            assert status == 503 and not body["ready"] and "store unreachable" in body["reason"]
            assert c.get("/healthz").status_code == 200
            proxy.up()
            deadline = time.monotonic() + 20
            while _ready(c)[0] != 200:
                assert time.monotonic() < deadline
                time.sleep(0.5)
    finally:
        server.stop()
        proxy.close()
