"""Signals that let other apps react to archive changes without `studies` importing them."""

from django.dispatch import Signal

# Sent by the archive import after the transaction that created or updated sessions commits.
# Arguments: study (Study), created (list of Session), updated (list of Session).
sessions_imported = Signal()

# Sent once at the end of an import run that was not a dry run, after its last transaction
# commits. Arguments: study (Study), created (list of the Sessions the run created), run_id (a
# string unique to the run).
import_finished = Signal()
