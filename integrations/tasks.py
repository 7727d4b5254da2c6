"""Background jobs of the integrations, run by the django-q2 cluster (`manage.py qcluster`)."""

from integrations import services
from studies.models import Timepoint


def push_to_xnat(push_id):
    """Push a scan's current QC state to XNAT; return a one-line summary."""
    return services.push_to_xnat(push_id)


def refresh_timepoint_issues(timepoint_id):
    """Fetch the tracker issues that mention a timepoint; return a one-line summary."""
    timepoint = Timepoint.objects.filter(pk=timepoint_id).first()
    if timepoint is None:
        return f"timepoint {timepoint_id} no longer exists"
    return services.refresh_timepoint_issues(timepoint)
