from django.apps import AppConfig


class RedcapConfig(AppConfig):
    name = "redcap"
    verbose_name = "REDCap"

    def ready(self):
        from redcap import config_sync, receivers
        from studies import config_sync as studies_config_sync
        from studies.signals import sessions_imported

        sessions_imported.connect(
            receivers.link_imported_sessions, dispatch_uid="redcap-link-imported-sessions"
        )
        studies_config_sync.register_sync_step(config_sync.RedcapSyncStep())
