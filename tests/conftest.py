from __future__ import annotations

import os
import uuid

import pytest
from hypothesis import HealthCheck, settings

from driftline.errors import BrokerError

# Property tests: a few seconds by default, many more examples when CI is set.
_SLOW_DATA = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("default", max_examples=100, deadline=None, suppress_health_check=_SLOW_DATA)
settings.register_profile("ci", max_examples=2000, deadline=None, suppress_health_check=_SLOW_DATA)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture(scope="session")
def broker():
    """The embedded Kafka-compatible broker, shared by the session."""
    from driftline.streams.broker import EmbeddedBroker
    try:
        b = EmbeddedBroker().start()
    except BrokerError as exc:
        pytest.fail(f"embedded broker did not start: {exc}")
    yield b
    b.stop()


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:10]


def _postgres_url() -> str | None:
    return os.environ.get("DRIFTLINE_TEST_POSTGRES_URL")


def empty_postgres() -> str:
    """The test PostgreSQL database with driftline's tables dropped; skips (fails in CI) without one."""
    url = _postgres_url()
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL tests: DRIFTLINE_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL not available: set DRIFTLINE_TEST_POSTGRES_URL to run these tests")
    from sqlalchemy import create_engine, text

    from driftline.store.schema import metadata
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    metadata.drop_all(engine)
    with engine.begin() as c:
        c.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
    return url


@pytest.fixture
def postgres_url() -> str:
    return empty_postgres()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A SQLite file, and PostgreSQL when DRIFTLINE_TEST_POSTGRES_URL is set."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'driftline.db'}"
    return empty_postgres()


@pytest.fixture(autouse=True)
def _forget_secrets():
    """Each test starts with no secrets masked: a configuration loaded by an earlier test (one
    whose store password is a common word, like CI's PostgreSQL) must not mask this one's output."""
    from driftline import logs
    logs.REDACT.clear()
    yield
    logs.REDACT.clear()
