"""The yardstick of bench/home.py: Flask's hello world, served by gunicorn with the portal's own
settings (gunicorn.conf.py), so that the home page is measured against what the same server and
framework do with nothing to do."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "Hello, World!"
