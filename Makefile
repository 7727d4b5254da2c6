# qcdash: `make run` serves the demo, `make test` runs the test suite.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo/archive
HOST := 127.0.0.1:8000

.PHONY: run serve test install lint demo clean

run: install
	$(MAKE) --no-print-directory demo
	@echo "Serving qcdash on http://$(HOST)/ (sign in as reviewer@example.org / qcdash-demo)"
	@trap 'trap - INT TERM EXIT; kill 0' INT TERM EXIT; \
	export SITE_URL=$${SITE_URL:-http://$(HOST)}; \
	$(BIN)/python manage.py qcluster & \
	$(BIN)/python manage.py runserver --noreload $(HOST)

# Migrate, build the demo archive, read its datman config, import it, create the demo accounts
# and install the schedules. DEMO_ENV lets `serve` run the same steps with production settings.
demo: install
	$(DEMO_ENV) $(BIN)/python manage.py migrate --noinput
	$(DEMO_ENV) $(BIN)/python manage.py make_demo_archive $(DEMO) --force
	$(DEMO_ENV) $(BIN)/python manage.py sync_config $(DEMO)/config/main_config.yml
	$(DEMO_ENV) $(BIN)/python manage.py load_gold_standards DEMO
	@# The demo archive holds one malformed file name on purpose, so the import exits 1.
	-$(DEMO_ENV) $(BIN)/python manage.py import_archive DEMO
	$(DEMO_ENV) $(BIN)/python manage.py create_demo_accounts --force
	$(DEMO_ENV) $(BIN)/python manage.py setup_schedules

# The production setup on this machine: DEBUG off, gunicorn, collected static files, the
# background worker. Plain HTTP on 127.0.0.1, so the HTTPS-only cookies and redirect are off.
SERVE_ENV := DEBUG=false ALLOWED_HOSTS=127.0.0.1,localhost \
	SECRET_KEY=$${SECRET_KEY:-local-serve-$$(hostname)-not-for-a-public-server} \
	DATABASE_URL=$${DATABASE_URL:-sqlite:///$(CURDIR)/db.sqlite3} \
	SECURE_SSL_REDIRECT=false SESSION_COOKIE_SECURE=false CSRF_COOKIE_SECURE=false \
	SECURE_HSTS_SECONDS=0 MFA_REQUIRED_FOR_DASHBOARD_ADMINS=false

serve: install
	$(MAKE) --no-print-directory demo DEMO_ENV="$(SERVE_ENV)"
	$(SERVE_ENV) $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@echo "Serving qcdash with gunicorn on http://$(HOST)/ (DEBUG off; reviewer@example.org / qcdash-demo)"
	@trap 'trap - INT TERM EXIT; kill 0' INT TERM EXIT; \
	$(SERVE_ENV) $(BIN)/python manage.py qcluster & \
	$(SERVE_ENV) $(BIN)/gunicorn qcdash.wsgi --bind $(HOST) --workers 3 --access-logfile -

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
