"""Liveness and readiness endpoints for load balancers and monitoring.

Both return JSON without a login, and name no file paths, hosts or versions.
"""

import logging
import os
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

HEARTBEAT_FUNC = "qcdash.health.heartbeat"
# The heartbeat schedule runs every minute; a worker silent for five is reported as not seen.
WORKER_SILENCE_LIMIT = timedelta(minutes=5)


def heartbeat():
    """Background task run every minute so /readyz can tell that a worker is alive."""
    return f"worker alive at {timezone.now():%Y-%m-%d %H:%M:%S}"


def check_database():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        logger.error("readiness: database unreachable: %s", error)
        return False, "database unreachable"
    return True, "reachable"


def check_migrations():
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as error:
        logger.error("readiness: cannot read the migration state: %s", error)
        return False, "migration state unreadable"
    if plan:
        return False, f"{len(plan)} migrations not applied; run manage.py migrate"
    return True, "all applied"


def check_worker():
    from django_q.models import Task

    try:
        last = (
            Task.objects.filter(func=HEARTBEAT_FUNC, success=True)
            .order_by("-stopped")
            .values_list("stopped", flat=True)
            .first()
        )
    except DatabaseError as error:
        logger.error("readiness: cannot read background task results: %s", error)
        return False, "task results unreadable"
    if last is None:
        return False, "no heartbeat yet; start manage.py qcluster and run manage.py setup_schedules"
    age = timezone.now() - last
    if age > WORKER_SILENCE_LIMIT:
        return False, f"last heartbeat {int(age.total_seconds())} s ago"
    return True, f"last heartbeat {int(age.total_seconds())} s ago"


def check_archive():
    root = settings.ARCHIVE_ROOT
    if not os.path.isdir(root) or not os.access(root, os.R_OK | os.X_OK):
        logger.error("readiness: archive root %s is missing or unreadable", root)
        return False, "archive root missing or unreadable (ARCHIVE_ROOT)"
    return True, "readable"


READINESS_CHECKS = {
    "database": check_database,
    "migrations": check_migrations,
    "worker": check_worker,
    "archive": check_archive,
}
NEEDS_DATABASE = {"migrations", "worker"}


@never_cache
@require_GET
def healthz(request):
    """Return 200 while the process runs. Nothing else is checked."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    """Ready to serve: 200 when every check passes, else 503 with the failing checks."""
    checks = {}
    for name, check in READINESS_CHECKS.items():
        # These checks read the database, so they are skipped when it is unreachable.
        if name in NEEDS_DATABASE and not checks["database"]["ok"]:
            checks[name] = {"ok": False, "detail": "not checked: database unreachable"}
            continue
        ok, detail = check()
        checks[name] = {"ok": ok, "detail": detail}
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )
