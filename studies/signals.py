"""Signals that let other apps react to archive changes without `studies` importing them."""

from django.dispatch import Signal

# Sent by the archive import for sessions it created or updated, after their transactions
# commit: for up to 50 sessions at a time (`importer.SESSIONS_PER_ANNOUNCEMENT`), and for the
# rest at the end of the run, also when the run stops with an error.
# Arguments: study (Study), created (list of Session), updated (list of Session).
sessions_imported = Signal()

# Sent once at the end of an import run that was not a dry run, after its last transaction
# commits. Arguments: study (Study), created (list of the Sessions the run created), run_id (a
# string unique to the run).
import_finished = Signal()
