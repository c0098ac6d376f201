"""gunicorn settings. Workers share nothing in memory: any worker may serve any request.

Worker count: gunicorn reads WEB_CONCURRENCY itself (`make run` sets 2; size production with
`make bench`). The bind address comes from the command line, defaulting to loopback.
"""

bind = "127.0.0.1:8000"
worker_class = "gthread"
threads = 4
# WeChat waits 5 s for a notification reply; a request still running at 30 s is stuck.
timeout = 30
graceful_timeout = 20
# The app writes its own structured access log line per request.
accesslog = None
# Several gunicorns on one host (tests, demo, blue/green) must not fight over one socket path.
control_socket_disable = True
