# Two commands for a newcomer: `make run` and `make test`. See README.md.
VENV ?= .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app app
PORT ?= 5000
PYTHON ?= python3

.PHONY: install run test test-sqlite test-scaleout lint translations bench clean system

# What the portal itself needs from Debian: ffmpeg (video/audio metadata), CJK fonts (the 移送书
# PDF). Installed when missing and we are root; otherwise the command to run is printed.
SYSTEM_PACKAGES := ffmpeg fonts-arphic-uming fonts-wqy-zenhei
system:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
		dpkg-query -W -f='$${db:Status-Status}' $$p 2>/dev/null | grep -qx installed || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then echo "== installing$$missing"; apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else echo "== missing Debian packages:$$missing (run: sudo apt-get install$$missing)"; exit 1; fi; \
	fi

$(VENV)/.installed: pyproject.toml package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --loglevel=error; \
	 else echo "npm not found: the accessibility tests need axe-core (npm ci)"; fi
	touch $@

translations: $(VENV)/.installed
	$(VENV)/bin/pybabel compile -f -d portal/translations

install: $(VENV)/.installed translations

run: system install
	$(FLASK) db upgrade
	@# The embedded database in WAL mode (kept in the file): readers never wait for a writer, and
	@# `flask backup` copies it without holding writers back.
	@[ -n "$$DATABASE_URL" ] || $(PY) -c "import sqlite3; sqlite3.connect('instance/qingliu.sqlite3').execute('PRAGMA journal_mode=WAL')"
	$(FLASK) seed
	$(FLASK) setup-link --base-url http://127.0.0.1:$(PORT)
	$(VENV)/bin/gunicorn -c gunicorn.conf.py -b 127.0.0.1:$(PORT) app:app

# bandit: medium severity and above, 0 findings; an exception is a `# nosec BXXX: why` on its line.
# mypy: 0 errors over the packages pyproject.toml names; an exception is a
# `# type: ignore[code]  # why` on its line.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/bandit -q -ll -r portal models referral auditlog app.py config.py gunicorn.conf.py
	$(VENV)/bin/mypy

# The suite on the embedded default (SQLite, in-memory limits), then on PostgreSQL + Redis when
# TEST_DATABASE_URL and TEST_REDIS_URL are set (.ci/run sets them).
test: lint test-sqlite test-scaleout

# In parallel: pytest-xdist, one worker per core (each with a database, Redis number and tmp
# folder of its own: tests/conftest.py). PYTEST_WORKERS=0 runs the suite serially in one process.
PYTEST_WORKERS ?= auto
PYTEST_PARALLEL = -n $(PYTEST_WORKERS)

test-sqlite: install
	env -u TEST_DATABASE_URL -u TEST_REDIS_URL $(PY) -m pytest -q $(PYTEST_PARALLEL) $(PYTEST_ARGS)

# The browser walks drive the pages in Chromium; what they store goes through the same code the
# functional tests run on PostgreSQL, so the second pass leaves them to the first and CI stays
# under 30 minutes on two cores (`make test-scaleout SCALEOUT_MARKS=` runs them there too); so do
# the benchmarks' toy runs, which start their own servers and databases.
SCALEOUT_MARKS ?= not browser and not bench
test-scaleout: install
	@if [ -n "$$TEST_DATABASE_URL" ] && [ -n "$$TEST_REDIS_URL" ]; then \
		echo "== again on PostgreSQL ($$TEST_DATABASE_URL) and Redis ($$TEST_REDIS_URL)"; \
		$(PY) -m pytest -q $(PYTEST_PARALLEL) -m "$(SCALEOUT_MARKS)" $(PYTEST_ARGS); \
	else \
		echo "== TEST_DATABASE_URL / TEST_REDIS_URL not set: PostgreSQL + Redis run skipped"; \
	fi

# Every figure of issue 13's table against its goal, in a quick mode (bench/all.py). The pages
# measured at 1,000,000 tips are measured on PostgreSQL too when BENCH_DATABASE_URL names a
# database the benchmark may empty (the local server's qingliu_bench when it answers).
BENCH_DATABASE_URL ?= $(shell pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && echo postgresql://postgres@127.0.0.1:5432/qingliu_bench)
bench: install
	@$(MAKE) --no-print-directory system SYSTEM_PACKAGES="$(SYSTEM_PACKAGES) wrk"
	BENCH_DATABASE_URL="$(BENCH_DATABASE_URL)" $(PY) bench/all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
