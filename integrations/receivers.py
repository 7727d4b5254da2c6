"""Receivers of other apps' signals; connected in `IntegrationsConfig.ready()`."""

import logging

from django.db import transaction

from integrations import services

logger = logging.getLogger(__name__)


def queue_xnat_pushes(sender, *, instance, created, **kwargs):
    """Queue XNAT pushes for a new QC decision once its transaction commits."""
    if not created:
        return
    transaction.on_commit(lambda: _queue(instance.scan_id))


def queue_xnat_pushes_in_bulk(sender, *, reviews, **kwargs):
    """Queue XNAT pushes for decisions written in one bulk_create, once they commit."""
    scan_ids = sorted({review.scan_id for review in reviews})
    if scan_ids:
        transaction.on_commit(lambda: _queue(*scan_ids))


def _queue(*scan_ids):
    try:
        services.queue_pushes_for_review_targets(scan_ids)
    except Exception:
        # The decision has committed already, so a failure here must not fail the reviewer's
        # request. No push row exists to list as failed, so the log is the only trace.
        logger.exception("queueing the XNAT pushes of scans %s failed", scan_ids)
