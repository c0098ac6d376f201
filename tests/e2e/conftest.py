from __future__ import annotations

import pytest

from tests.support.processes import start_gunicorn


@pytest.fixture(scope="module")
def served_app(app, database_url, redis_server, sandbox_url, artifacts_dir, tmp_path_factory):
    """gunicorn serving the app on the test database (migrated by `app`) with 4 workers."""
    process, base_url = start_gunicorn({
        "FENXIAO_ENV": "test", "DATABASE_URL": database_url, "REDIS_URL": redis_server.url,
        "WECHAT_API_BASE_URL": sandbox_url, "WECHATPAY_API_BASE_URL": sandbox_url,
        "INSTANCE_DIR": str(tmp_path_factory.mktemp("e2e-instance")),
    }, artifacts_dir, workers=4)
    yield base_url, process
    process.stop()
