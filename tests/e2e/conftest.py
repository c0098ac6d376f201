from __future__ import annotations

import pytest

from tests.support.processes import start_gunicorn

WORKERS = 4
# gunicorn's own access line per request, with the serving worker's pid: the app's JSON lines
# do not say which worker wrote them, and the duplicate-notification tests must show that
# copies were spread over several workers. The path only (%(U)s): query strings may carry codes.
ACCESS_LOG_MARK = "e2e-access"
# Left alone, one gthread worker that wakes first may accept nearly all of a burst (59 of 64
# copies seen), so "across every worker" would depend on luck. At most 16 open connections per
# worker, a burst of 64 (their notifications wait on one order's row lock, so they are all
# open at once) must reach all 4; more connections wait in the listen backlog, none is refused.
WORKER_CONNECTIONS = 16
GUNICORN_CMD_ARGS = (f"--worker-connections {WORKER_CONNECTIONS} "
                     "--access-logfile - --access-logformat "
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
                                       artifacts_dir, workers=WORKERS)
    yield base_url, process
    process.stop()
