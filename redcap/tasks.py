"""Background jobs of the REDCap intake, run by the django-q2 cluster (`manage.py qcluster`)."""

from redcap import services, sync


def fetch_trigger(trigger_id):
    """Fetch, store and link the record one trigger names; return a one-line summary."""
    return services.fetch_trigger(trigger_id)


def sync_all_configs():
    """Pull every complete record of every configuration (the daily catch-up); return a summary."""
    return sync.sync_configs(sync.configs_for()).summary
