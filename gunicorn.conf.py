"""gunicorn settings for `make run` and production.

No access log: an access log line carries the client's address and user agent, which the portal
promises never to write for citizen routes. Errors go to stderr through a logger that
removes any client address (gunicorn logs malformed requests as "Invalid request from ip=…").
"""

accesslog = None
errorlog = "-"
logger_class = "portal.logscrub.GunicornLogger"
loglevel = "warning"
workers = 2
threads = 4
# Large uploads (several files of 50 MB) on slow phone connections.
timeout = 300
graceful_timeout = 30
