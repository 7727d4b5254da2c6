"""django-q2 tasks of the download jobs: thin wrappers that load by id and call one service."""

from pipelines import services


def start_download(record_id):
    """Start the download job of the session a stored survey record names, if it needs one."""
    job = services.start_download(record_id)
    if job is None:
        return f"record {record_id}: no download needed"
    return f"record {record_id}: download job {job.pk} for {job.session_name} started"


def run_download_job(job_id):
    """Run the next step of one download job."""
    return f"download job {job_id}: {services.run_job(job_id)}"


def queue_due_downloads():
    """Start missing download jobs and queue a run of every open one (run hourly)."""
    started, queued = services.queue_due_downloads()
    return f"{started} download jobs started, {queued} runs queued"
