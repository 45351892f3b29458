# The two commands of the README: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo demo-scale test test-faults test-scale install lint typecheck imports infra-check pytest browser ffmpeg proxy client frontend messages openapi clean \
        bench bench-http bench-ws bench-workers bench-client bench-excel bench-lists bench-metrics bench-video bench-scale bench-feeds

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[embedded,test,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install client ffmpeg
	$(PY) -m project.devrun

# The web tier as production runs it: PROCESSES uvicorn servers behind Debian's nginx on :8000
# (infra/proxy/nginx.conf, least_conn; project/scale.py), one metrics directory for them all.
PROCESSES ?= 3

demo-scale: install client proxy
	$(PY) -m project.devrun --processes $(PROCESSES)

test: install lint typecheck imports infra-check frontend pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy realtime domains workers

imports: install
	$(VENV)/bin/lint-imports

# CloudFormation under infra/aws/ (offline): cfn-lint with the project's invariant rules, then
# the template tests (values against the Python code, moto's CloudFormation for the queues).
infra-check: install
	$(VENV)/bin/cfn-lint --append-rules infra/aws/rules -- infra/aws/*.yaml
	$(VENV)/bin/pytest -q tests/infra

# End-to-end tests drive Debian's Chromium; install it when missing (CI runs as root).
browser:
	@(command -v chromium >/dev/null 2>&1 && fc-list | grep -qi nanum) || apt-get install -y -q chromium fonts-nanum >/dev/null 2>&1 \
		|| (apt-get update -q >/dev/null && apt-get install -y -q chromium fonts-nanum >/dev/null) \
		|| { echo "Chromium is needed for the end-to-end tests: apt-get install chromium"; exit 1; }

# Video encoding runs Debian's ffmpeg and ffprobe (research/video_anchors.md §3.3: the PyPI
# static builds lack ffprobe or crash on MPEG-TS); install them when missing.
ffmpeg:
	@(command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1) || apt-get install -y -q ffmpeg >/dev/null 2>&1 \
		|| (apt-get update -q >/dev/null && apt-get install -y -q ffmpeg >/dev/null) \
		|| { echo "ffmpeg is needed for the video tests: apt-get install ffmpeg"; exit 1; }

# The proxy tests run `nginx -t` and a real nginx on infra/proxy/nginx.conf: Debian's nginx.
proxy:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || apt-get install -y -q nginx-light >/dev/null 2>&1 \
		|| (apt-get update -q >/dev/null && apt-get install -y -q nginx-light >/dev/null) \
		|| { echo "nginx is needed for the proxy tests: apt-get install nginx-light"; exit 1; }

pytest: install client browser ffmpeg proxy
	$(VENV)/bin/pytest

# The fault suite (tests/faults, docs/RELIABILITY.md): private Redis servers, a TCP fault proxy,
# real worker and server processes killed and cut off on purpose. Not in `make test`'s
# testpaths: it waits out timeouts by design. Each scenario prints a FAULT-RESULT line. The
# ASGI kill scenario runs 1,000 of the built browser clients (dist/) in Node.
FAULT_RESULTS ?= .run/fault-results.jsonl

test-faults: install client
	mkdir -p $(dir $(FAULT_RESULTS)) && rm -f $(FAULT_RESULTS)
	FAULT_RESULTS_FILE=$(abspath $(FAULT_RESULTS)) $(VENV)/bin/pytest tests/faults
	@test ! -s $(FAULT_RESULTS) || cat $(FAULT_RESULTS)

# The scale suite (tests/scale): several real ASGI processes behind a real nginx, killed on
# purpose, and "hosts" made of network namespaces (root). Not in `make test`'s testpaths: each
# scenario starts several servers. Each prints a SCALE-RESULT line (docs/RELIABILITY.md).
SCALE_LOG ?= .run/scale-results.log

test-scale: install proxy
	mkdir -p $(dir $(SCALE_LOG))
	$(VENV)/bin/pytest -s -rA tests/scale > $(SCALE_LOG) 2>&1; status=$$?; \
		grep '^SCALE-RESULT' $(SCALE_LOG); tail -n 40 $(SCALE_LOG); exit $$status

NODE_STAMP := frontend-client/node_modules/.installed

$(NODE_STAMP): frontend-client/package-lock.json
	cd frontend-client && npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

# The demo pages' own dependencies (hls.js for the video page): not the client library's.
DEMO_NODE_STAMP := frontend-client/demo/node_modules/.installed

$(DEMO_NODE_STAMP): frontend-client/demo/package-lock.json
	cd frontend-client/demo && npm ci --no-audit --no-fund
	touch $(DEMO_NODE_STAMP)

# The TypeScript client library, built into frontend-client/dist/ (the demo page loads it).
client: $(NODE_STAMP) $(DEMO_NODE_STAMP)
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

bench: bench-http bench-ws bench-workers bench-client bench-excel bench-lists bench-metrics bench-video bench-scale bench-feeds

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

bench-lists: install
	$(BENCH_PY) -m bench.lists.run

# 60 s clips at 720p and 1080p: the worker path against its ffmpeg command alone, paired.
bench-video: install ffmpeg
	$(BENCH_PY) bench/video/run.py

bench-metrics: install
	$(BENCH_PY) -m bench.metrics.run

# 10,000 sockets over 4 uvicorn processes with private PostgreSQL, Redis and moto, the workers
# at their caps, a reconnect storm (bench/scale/RESULTS.md); SCALE_ARGS="--users 2000" for less.
SCALE_ARGS ?=
bench-scale: install ffmpeg
	ulimit -n $$(ulimit -Hn) && $(BENCH_PY) -m bench.scale.run $(SCALE_ARGS)

# The tenant feed: its Redis cost per change, and a 500-job dashboard over the feed against
# 500 single-topic subscriptions, one server process (bench/feeds/RESULTS.md).
bench-feeds: install
	$(BENCH_PY) -m bench.feeds.run

clean:
	rm -rf $(VENV) .run .mypy_cache .ruff_cache .pytest_cache
