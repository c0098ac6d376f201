"""gunicorn settings. Workers share nothing in memory: any worker may serve any request.

Worker count: gunicorn's own WEB_CONCURRENCY variable, else two per core. The bind address comes
from the command line (`make run` passes PORT), defaulting to loopback.
"""

import multiprocessing

bind = "127.0.0.1:8000"
workers = multiprocessing.cpu_count() * 2
worker_class = "gthread"
threads = 4
# WeChat waits 5 s for a notification reply; a request still running at 30 s is stuck.
timeout = 30
graceful_timeout = 20
# The app writes its own structured access log line per request.
accesslog = None
