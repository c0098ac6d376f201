"""CI step: ``flask db upgrade`` on an empty PostgreSQL, then ``flask db check`` (no drift).

Runs the real commands in subprocesses against a throwaway server, exactly as an operator would.
"""

from __future__ import annotations

import subprocess
import sys

from tests.support.processes import PROJECT_ROOT, child_env
from tests.support.servers import PostgresServer, RedisServer


def main() -> int:
    postgres = PostgresServer().start()
    redis_server = RedisServer().start()
    try:
        env = child_env(DATABASE_URL=postgres.create_database("fenxiao_migrations"),
                        REDIS_URL=redis_server.url)
        for command in (["db", "upgrade"], ["db", "check"]):
            print("$ flask --app wsgi", " ".join(command), flush=True)
            subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *command],
                           cwd=PROJECT_ROOT, env=env, check=True)
    finally:
        redis_server.stop()
        postgres.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
