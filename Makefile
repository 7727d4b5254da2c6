# qcdash: `make run` serves the demo, `make test` runs the test suite.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo/archive
HOST := 127.0.0.1:8000

.PHONY: run test install lint demo clean

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py make_demo_archive $(DEMO) --force
	$(BIN)/python manage.py sync_config $(DEMO)/config/main_config.yml
	@# The demo archive holds one malformed file name on purpose, so the import exits 1.
	-$(BIN)/python manage.py import_archive DEMO
	$(BIN)/python manage.py create_demo_accounts
	@echo "Serving qcdash on http://$(HOST)/ (sign in as reviewer@example.org / qcdash-demo)"
	@trap 'kill 0' INT TERM EXIT; \
	$(BIN)/python manage.py qcluster & \
	$(BIN)/python manage.py runserver --noreload $(HOST)

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

clean:
	rm -rf $(VENV) node_modules staticfiles demo db.sqlite3
