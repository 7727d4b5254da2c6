from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations (XNAT, issue tracker)"

    def ready(self):
        from django.db.models.signals import post_save

        from integrations import config_sync, receivers
        from qc.models import ScanReview
        from qc.signals import reviews_bulk_created
        from studies import config_sync as studies_config_sync

        # qc never imports this app: every new QC decision reaches it through post_save, or
        # reviews_bulk_created for a sign-off's approvals, and the receivers queue the XNAT
        # pushes once the decision's transaction commits.
        post_save.connect(
            receivers.queue_xnat_pushes, sender=ScanReview, dispatch_uid="integrations.xnat_push"
        )
        reviews_bulk_created.connect(
            receivers.queue_xnat_pushes_in_bulk,
            sender=ScanReview,
            dispatch_uid="integrations.xnat_push_bulk",
        )
        studies_config_sync.register_sync_step(config_sync.XnatSyncStep())
