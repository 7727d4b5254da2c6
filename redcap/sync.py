"""Catch-up sync: pull every record of each configured instrument and reconcile.

Triggers can be lost (REDCap sends each one once and never retries), so the sync stores what a
lost trigger would have stored. Running it twice changes nothing the second time.
"""

import logging
from contextlib import nullcontext
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from redcap import client, services
from redcap.models import RedcapConfig, RedcapRecord

logger = logging.getLogger(__name__)


@dataclass
class SyncCounts:
    """The outcome of syncing one configuration, or of several added up."""

    fetched: int = 0
    created: int = 0
    changed: int = 0
    unchanged: int = 0
    not_complete: int = 0
    linked: int = 0
    unmatched: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other):
        for name in ("fetched", "created", "changed", "unchanged", "not_complete", "linked"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.unmatched += other.unmatched
        self.errors += other.errors

    @property
    def summary(self):
        return (
            f"{self.fetched} records fetched: {self.created} created, {self.changed} changed, "
            f"{self.unchanged} unchanged, {self.not_complete} not complete, {self.linked} "
            f"linked, {self.unmatched} unmatched, {len(self.errors)} errors"
        )


@dataclass
class SyncResult:
    """The outcome of a sync run: one entry per configuration, in order."""

    configs: list[tuple[RedcapConfig, SyncCounts]] = field(default_factory=list)
    dry_run: bool = False

    @property
    def total(self):
        total = SyncCounts()
        for _, counts in self.configs:
            total.add(counts)
        return total

    @property
    def summary(self):
        line = f"REDCap sync of {len(self.configs)} configurations: {self.total.summary}"
        if self.dry_run:
            line += " (dry run: all changes rolled back, nothing was saved)"
        return line


def configs_for(study=None):
    """Configurations to sync: all, or those used by one of the study's sites."""
    configs = RedcapConfig.objects.order_by("pk")
    if study is not None:
        configs = configs.filter(study_sites__study=study).distinct()
    return configs


def sync_configs(configs, *, dry_run=False):
    """Sync each configuration in turn and return a SyncResult.

    A configuration whose REDCap cannot be read is reported in its counts' errors, and the
    others are still synced. With `dry_run` every change is rolled back.
    """
    result = SyncResult(dry_run=dry_run)
    # Only a dry run wraps the whole run in one transaction, because a real run would otherwise
    # hold its row locks through every HTTP request to REDCap.
    with transaction.atomic() if dry_run else nullcontext():
        for config in configs:
            result.configs.append((config, sync_config(config)))
        if dry_run:
            transaction.set_rollback(True)
    logger.info("%s", result.summary)
    return result


def sync_config(config):
    """Pull every record of one configuration's instrument, store it and link it."""
    counts = SyncCounts()
    if not config.token:
        counts.errors.append(f"{config} has no API token; add one in the admin.")
        return _finish(config, counts)
    try:
        rows = client.export_records(
            config.endpoint,
            config.token,
            fields=services.export_fields(config),
            timeout=settings.REDCAP_TIMEOUT,
        )
    except client.RedcapApiError as error:
        logger.error("REDCap sync of %s failed: %s", config, error)
        counts.errors.append(str(error))
        return _finish(config, counts)

    services.refresh_version(config, force=True)
    for row in rows:
        _sync_row(config, row, counts)
    counts.unmatched = RedcapRecord.objects.unmatched().filter(config=config).count()
    return _finish(config, counts)


def _sync_row(config, row, counts):
    counts.fetched += 1
    try:
        values = services.read_row(config, row)
    except services.RedcapError as error:
        counts.errors.append(str(error))
        return
    if not values.is_complete:
        counts.not_complete += 1
        return
    outcome = services.store_record(config, values)
    if outcome.created:
        counts.created += 1
    elif outcome.changed:
        counts.changed += 1
    else:
        counts.unchanged += 1
    counts.linked += outcome.linked


def _finish(config, counts):
    summary = counts.summary
    if counts.errors:
        summary += f"; first error: {counts.errors[0]}"
    max_length = RedcapConfig._meta.get_field("last_sync_summary").max_length
    RedcapConfig.objects.filter(pk=config.pk).update(
        last_synced_at=timezone.now(), last_sync_summary=summary[:max_length]
    )
    return counts
