"""Receivers that start and move on download jobs; connected when the app is ready."""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django_q.tasks import async_task

from pipelines import services
from pipelines.models import DownloadSettings
from redcap.models import RedcapRecord
from studies.signals import sessions_imported


@receiver(post_save, sender=RedcapRecord, dispatch_uid="pipelines.start_download")
def queue_download_start(sender, instance, **kwargs):
    # Only records that name a valid session, of a configuration with a download command at one
    # of its study sites, can start a download; the task checks the rest. So nothing is queued
    # while download jobs are not set up.
    if not instance.session_name:
        return
    configured = DownloadSettings.objects.filter(study_site__redcap_configs=instance.config_id)
    if not configured.exists():
        return
    record_id = instance.pk
    transaction.on_commit(lambda: async_task("pipelines.tasks.start_download", record_id))


sessions_imported.connect(
    services.handle_sessions_imported, dispatch_uid="pipelines.sessions_imported"
)
