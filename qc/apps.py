from django.apps import AppConfig


class QcConfig(AppConfig):
    name = "qc"
    verbose_name = "Quality control"

    def ready(self):
        # studies never imports qc, so qc follows archive imports through this signal.
        from qc.compliance_services import handle_sessions_imported
        from studies.signals import sessions_imported

        sessions_imported.connect(
            handle_sessions_imported, dispatch_uid="qc.compliance.header_diffs"
        )
