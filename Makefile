# The two commands of the README: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test install lint typecheck imports pytest browser client frontend messages openapi clean \
        bench bench-http bench-ws bench-workers bench-client bench-excel

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[embedded,test,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install client
	$(PY) -m project.devrun

test: install lint typecheck imports frontend pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy realtime domains

imports: install
	$(VENV)/bin/lint-imports

# End-to-end tests drive Debian's Chromium; install it when missing (CI runs as root).
browser:
	@(command -v chromium >/dev/null 2>&1 && fc-list | grep -qi nanum) || apt-get install -y -q chromium fonts-nanum >/dev/null 2>&1 \
		|| (apt-get update -q >/dev/null && apt-get install -y -q chromium fonts-nanum >/dev/null) \
		|| { echo "Chromium is needed for the end-to-end tests: apt-get install chromium"; exit 1; }

pytest: install client browser
	$(VENV)/bin/pytest

NODE_STAMP := frontend-client/node_modules/.installed

$(NODE_STAMP): frontend-client/package-lock.json
	cd frontend-client && npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

# The TypeScript client library, built into frontend-client/dist/ (the demo page loads it).
client: $(NODE_STAMP)
	cd frontend-client && npm run build

# ... and its checks: type-check, unit tests, build.
frontend: $(NODE_STAMP)
	cd frontend-client && npm run typecheck && npm test && npm run build

# The OpenAPI document as the server generates it, and the TypeScript types generated from it.
# Both are committed: tests/integration/test_openapi_document.py fails when the server's
# document differs, frontend-client/test/openapi.test.ts when the types differ from it.
OPENAPI_JSON := frontend-client/test/openapi/schema.json

openapi: install $(NODE_STAMP)
	DJANGO_ENV=test $(PY) manage.py spectacular --format openapi-json --file $(OPENAPI_JSON)
	cd frontend-client && npx openapi-typescript test/openapi/schema.json -o test/openapi/schema.ts

messages: install
	$(PY) manage.py makemessages -l ko --no-obsolete --no-location \
		--ignore='.venv/*' --ignore='.run/*' --ignore='frontend-client/*' --ignore='tests/*' --ignore='bench/*'
	$(PY) manage.py compilemessages --ignore='.venv/*'

# Benchmarks (not tests: no timings asserted anywhere). Each compares against a baseline in the
# same run and writes its figures to bench/<name>/RESULTS.md; docs/BENCHMARKS.md sums them up.
BENCH_PY := PYTHONPATH=$(CURDIR) $(PY)

bench: bench-http bench-ws bench-workers bench-client bench-excel

bench-http: install
	$(BENCH_PY) -m bench.http.run

bench-ws: install
	$(BENCH_PY) -m bench.ws.run --clients 1000 5000 --output last_run

bench-workers: install
	$(BENCH_PY) bench/workers/run.py

bench-client: install
	$(BENCH_PY) -m bench.client.requests_per_job

bench-excel: install
	$(BENCH_PY) bench/excel/lookup_methods.py
	$(BENCH_PY) bench/excel/import_bench.py

clean:
	rm -rf $(VENV) .run .mypy_cache .ruff_cache .pytest_cache
