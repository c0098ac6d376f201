from __future__ import annotations

import pytest

from tests.support.processes import start_gunicorn

# gunicorn's own access line per request, with the serving worker's pid: the app's JSON lines
# do not say which worker wrote them, and the duplicate-notification tests must show that
# copies were spread over several workers. The path only (%(U)s): query strings may carry codes.
ACCESS_LOG_MARK = "e2e-access"
GUNICORN_CMD_ARGS = ("--access-logfile - --access-logformat "
                     f"'{ACCESS_LOG_MARK} pid=%(p)s %(m)s %(U)s %(s)s'")


@pytest.fixture(scope="module")
def served_env(app, database_url, redis_server, sandbox_url, tmp_path_factory) -> dict:
    """The environment gunicorn serves with; commands run in it (`flask --app wsgi ...`) act
    on the same database, Redis and sandbox."""
    return {
        "FENXIAO_ENV": "test", "DATABASE_URL": database_url, "REDIS_URL": redis_server.url,
        "WECHAT_API_BASE_URL": sandbox_url, "WECHATPAY_API_BASE_URL": sandbox_url,
        "INSTANCE_DIR": str(tmp_path_factory.mktemp("e2e-instance")),
    }


@pytest.fixture(scope="module")
def served_app(served_env, artifacts_dir):
    """gunicorn serving the app on the test database (migrated by `app`) with 4 workers."""
    process, base_url = start_gunicorn({**served_env, "GUNICORN_CMD_ARGS": GUNICORN_CMD_ARGS},
                                       artifacts_dir, workers=4)
    yield base_url, process
    process.stop()
