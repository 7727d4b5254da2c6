"""Receivers of other apps' signals; connected in `RedcapConfig.ready()`."""

import logging

from redcap import services

logger = logging.getLogger(__name__)


def link_imported_sessions(sender, *, study, created, updated, **kwargs):
    """Link unmatched survey records to the sessions an archive import just created."""
    if not created:
        return
    try:
        linked = services.link_imported_sessions(created)
    except Exception:
        # The import has committed already, so a failure here must not fail it; the daily
        # REDCap sync links the records later.
        logger.exception("linking REDCap records to sessions imported for %s failed", study)
        return
    if linked:
        logger.info("%d REDCap records linked to sessions imported for %s", linked, study)
