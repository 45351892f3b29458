# The two commands of the README: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test install lint typecheck imports pytest frontend messages bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[embedded,test,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) -m project.devrun

test: install lint typecheck imports frontend pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy realtime domains

imports: install
	$(VENV)/bin/lint-imports

pytest: install
	$(VENV)/bin/pytest

# The TypeScript client: install from the lock file, type-check, unit-test, build dist/.
frontend:
	cd frontend-client && npm ci --no-audit --no-fund && npm run typecheck && npm test && npm run build

messages: install
	$(PY) manage.py makemessages -l ko --no-obsolete --no-location \
		--ignore='.venv/*' --ignore='.run/*' --ignore='frontend-client/*' --ignore='tests/*' --ignore='bench/*'
	$(PY) manage.py compilemessages --ignore='.venv/*'

clean:
	rm -rf $(VENV) .run .mypy_cache .ruff_cache .pytest_cache
