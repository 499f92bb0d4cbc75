"""gunicorn settings for `make run` and production.

No access log: an access log line carries the client's address and user agent, which the portal
promises never to write for citizen routes. Errors go to stderr at WARNING, where gunicorn does
not print client addresses (it logs invalid requests with their address only at DEBUG).
"""

accesslog = None
errorlog = "-"
loglevel = "warning"
workers = 2
threads = 4
# Large uploads (several files of 50 MB) on slow phone connections.
timeout = 300
graceful_timeout = 30
