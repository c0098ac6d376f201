"""Shared fixtures. Servers start only for the tests that ask for them: unit tests need none.

Integration and API tests run against real PostgreSQL and redis-server processes started here
on free loopback ports, and the WeChat sandbox as a real process; nothing is mocked on our side.

Redis topologies: a test marked ``redis_topologies`` (a module's ``pytestmark``) runs twice,
``[single]`` on the one redis-server and ``[cluster]`` on a Redis Cluster of three masters
(started on first use); every other test uses the single server only.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import text

from tests.support.processes import start_sandbox
from tests.support.servers import PostgresServer, RedisClusterServer, RedisServer

# Hypothesis judges speed by the clock; on a busy 2-core machine that turns into failures that
# say nothing about the code (the suite has no timed assertions, benchmarks measure speed).
settings.register_profile("fenxiao", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("fenxiao")


@pytest.fixture(scope="session")
def pg_server():
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster_server():
    server = RedisClusterServer().start()
    yield server
    server.stop()


# pytest keeps one value per session fixture and rebuilds it (and every fixture built on it:
# the app) when a test asks for another parameter. The single server's parameter is None, the
# value pytest sees for unparametrized tests too, so [single] tests and unmarked tests share
# one app; only a switch to or from [cluster] builds another.
TOPOLOGY_PARAMS = {"single": None, "cluster": "cluster"}


def pytest_generate_tests(metafunc):
    if metafunc.definition.get_closest_marker("redis_topologies") and \
            "redis_topology" in metafunc.fixturenames:
        metafunc.parametrize("redis_topology", list(TOPOLOGY_PARAMS.values()), indirect=True,
                             ids=list(TOPOLOGY_PARAMS), scope="session")


@pytest.fixture(scope="session")
def redis_topology(request) -> str:
    """``single`` or ``cluster``: which Redis the app of this test uses."""
    return getattr(request, "param", None) or "single"


@pytest.fixture(scope="session")
def redis_url(redis_topology, request) -> str:
    # Asked for by name, so that a run without [cluster] tests never starts the cluster.
    if redis_topology == "cluster":
        return request.getfixturevalue("redis_cluster_server").url
    return request.getfixturevalue("redis_server").url


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def sandbox_url(tmp_path_factory, artifacts_dir):
    process, url = start_sandbox(tmp_path_factory.mktemp("sandbox-state"), artifacts_dir)
    yield url
    process.stop()


@pytest.fixture(scope="session")
def database_url(pg_server):
    return pg_server.create_database("fenxiao_test")


@pytest.fixture(scope="session")
def app_settings(database_url, redis_url, sandbox_url, tmp_path_factory):
    from config.settings import load_settings

    return load_settings({
        "FENXIAO_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "WECHAT_API_BASE_URL": sandbox_url,
        "WECHATPAY_API_BASE_URL": sandbox_url,
        "INSTANCE_DIR": str(tmp_path_factory.mktemp("instance")),
        "LOG_LEVEL": "WARNING",
    })


@pytest.fixture(scope="session")
def app(app_settings):
    """The app on a PostgreSQL schema built by the migrations themselves (not create_all)."""
    from flask_migrate import upgrade

    from app import create_app

    application = create_app(app_settings)
    with application.app_context():
        upgrade()
    return application


@pytest.fixture
def app_context(app):
    with app.app_context():
        yield app


@pytest.fixture(autouse=True)
def _clean_state(request):
    """After each test that used the app: empty every table and the Redis database (on a
    cluster, FLUSHDB goes to every master)."""
    yield
    if "app" not in request.fixturenames:
        return
    from app.extensions import db, redis

    application = request.getfixturevalue("app")
    with application.app_context():
        db.session.remove()
        tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
        if tables:
            db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            db.session.commit()
        redis.client.flushdb()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_app(app, app_settings):
    """Another app on the same servers with some settings changed (limits, URLs)."""
    from app import create_app
    from app.extensions import limiter

    def _make(**changes):
        return create_app(dataclasses.replace(app_settings, **changes))
    yield _make
    # Flask-Limiter keeps one storage per Limiter object: point it back at the main app's.
    limiter.init_app(app)
