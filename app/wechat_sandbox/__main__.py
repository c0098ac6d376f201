"""`python -m app.wechat_sandbox --host 127.0.0.1 --port 8001` (port 0 picks a free port)."""

import argparse
import os
import signal
import sys

from werkzeug.serving import make_server

from .config import load_config
from .factory import create_sandbox_app


def _stop(signum, frame):
    # Raising in the main thread breaks serve_forever(); `finally` below closes the socket.
    raise SystemExit(0)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m app.wechat_sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    server = make_server(
        args.host, args.port, create_sandbox_app(load_config(environ=os.environ)), threaded=True
    )
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"wechat sandbox listening on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
