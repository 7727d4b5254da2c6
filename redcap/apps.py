from django.apps import AppConfig


class RedcapConfig(AppConfig):
    name = "redcap"
    verbose_name = "REDCap"
