from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    name = "pipelines"
    verbose_name = "Pipelines"

    def ready(self):
        from pipelines import receivers  # noqa: F401  (connects the signal receivers)
