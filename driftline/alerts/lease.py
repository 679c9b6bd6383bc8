"""Who a dispatcher is, and the lease on what it claimed, kept alive while it delivers.

A dispatcher claims due outbox rows for ``lease`` seconds (``Outbox.claim``). While a pass
runs, :class:`Renewal` extends the lease every third of it on a thread of its own, so a
slow send (a Slack that answers after its 10 s timeout, several calls for one message) never
loses its claim while the process is alive; a process that died stops renewing, and another
takes its rows over once the lease has passed. The lease is renewed rather than chosen longer
than a send: a sink's timeout bounds each socket operation, not a whole send.

>>> new_owner().count(":") >= 2
True
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

log = logging.getLogger(__name__)


def new_owner() -> str:
    """A name for this dispatcher: host, pid and a random part (a restart, or two in one process, differ)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class Renewal:
    """While the ``with`` block runs, renew ``owner``'s claims to ``clock() + lease`` every ``lease / 3`` s.
    A store that is not shared (in-memory SQLite: one process, one connection) needs none."""

    def __init__(self, outbox, owner: str, lease: float, clock, redact=str):
        self.outbox, self.owner, self.lease, self.clock, self.redact = outbox, owner, lease, clock, redact
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Renewal:
        if getattr(self.outbox, "shared", False):
            self._thread = threading.Thread(target=self._run, name="driftline-lease", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.lease / 3):
            try:
                self.outbox.renew(self.owner, self.clock() + self.lease)
            except Exception as exc:  # noqa: BLE001 - the next renewal tries again; the lease covers a gap
                log.warning("renewing the delivery lease failed (tried again in %.0f s): %s",
                            self.lease / 3, self.redact(str(exc)))
