"""uvicorn in a thread of its own beside the consumer: the only module that imports uvicorn.

uvicorn because it is the maintained, production ASGI server Starlette is made for; in
its own thread with its own event loop, a slow client or a slow query never holds up
the consumer loop (which never calls into it)."""

from __future__ import annotations

import logging
import threading
import time

import uvicorn

log = logging.getLogger(__name__)


class HttpServer:
    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, on_stop=None):
        self._on_stop = on_stop
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                lifespan="off", server_header=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="driftline-http", daemon=True)
        self.host = host
        self.port = port

    def start(self, timeout: float = 10.0) -> HttpServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"the HTTP server did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._on_stop is not None:
            self._on_stop()
