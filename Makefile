# Two commands matter: `make run` (the whole product) and `make test` (the whole suite).
# Both install everything first, into .venv, and are safe to run again.

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
# The suite runs in one process per core (pytest-xdist), each with its own PostgreSQL and
# Valkey; tests are handed out one at a time, the longest first (tests/conftest.py).
# PARALLEL= runs it in one process.
PARALLEL ?= --numprocesses auto --dist load --maxschedchunk 1

.PHONY: run test install browser lint check services-stop vendor clean-data

run: install
	$(PY) -m config.devstack

# The test servers (.data/test, .data/test-gw*) are stopped afterwards, whatever the outcome.
test: install browser
	$(PY) -m pytest $(PARALLEL) $(PYTEST_ARGS); status=$$?; \
	for dir in .data/test .data/test-gw*; do \
		[ -d $$dir ] && $(PY) -m config.embedded stop --dir $$dir >/dev/null; \
	done; exit $$status

# torch comes first and pinned: on this kind of machine pip then takes the local CPU build,
# and nothing later pulls CUDA wheels. The lock file pins everything else.
install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

# Browser tests drive Debian's Chromium through Playwright; install it when it is missing
# (these machines run as root). Without it they are skipped, except under CI where they fail.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Chromium (Debian package) for the browser tests..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing and cannot be installed here: browser tests will be skipped"; fi; }

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

check: install
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

services-stop: install
	for dir in .data/dev .data/test .data/test-gw*; do \
		[ -d $$dir ] && $(PY) -m config.embedded stop --dir $$dir || true; \
	done

# Refresh static/vendor from the npm registry (maintainers only; the result is committed).
vendor:
	rm -rf .data/npm && mkdir -p .data/npm
	cd .data/npm && npm pack --silent bootstrap@5.3.8 && tar xzf bootstrap-5.3.8.tgz
	cp .data/npm/package/dist/css/bootstrap.min.css* .data/npm/package/dist/js/bootstrap.bundle.min.js* \
	   .data/npm/package/LICENSE static/vendor/bootstrap/
	cd .data/npm && npm pack --silent chart.js@4.6.1 && mkdir -p chartjs && tar xzf chart.js-4.6.1.tgz -C chartjs
	cp .data/npm/chartjs/package/dist/chart.umd.min.js .data/npm/chartjs/package/LICENSE.md static/vendor/chartjs/
	@# A file naming a source map that is not vendored (chart.js's 1 MB map is not) breaks
	@# collectstatic in production (ManifestStaticFilesStorage): drop that comment line.
	@for f in static/vendor/*/*.js static/vendor/*/*.css; do \
	  map=$$(sed -n 's~^[/][/*]# sourceMappingURL=\([^ *]*\).*~\1~p' "$$f"); \
	  if [ -n "$$map" ] && [ ! -f "$$(dirname "$$f")/$$map" ]; then \
	    sed -i '/^[/][/*]# sourceMappingURL=/d' "$$f"; echo "$$f: dropped the reference to $$map"; fi; \
	done

clean-data: services-stop
	rm -rf .data
