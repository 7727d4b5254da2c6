"""Signals qc sends for other apps, which qc never imports."""

from django.dispatch import Signal

# Sent once, after the save, with `reviews`: the ScanReview rows a sign-off wrote in one
# bulk_create. bulk_create sends no post_save, so receivers of single reviews' post_save listen
# to this signal as well.
reviews_bulk_created = Signal()
