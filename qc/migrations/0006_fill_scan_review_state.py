"""Fill Scan.review_state from the newest review of each scan (of its source when linked)."""

from django.db import migrations
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce


def fill_review_states(apps, schema_editor):
    Scan = apps.get_model("studies", "Scan")
    ScanReview = apps.get_model("qc", "ScanReview")
    newest = ScanReview.objects.filter(
        scan_id=Coalesce(OuterRef("source_id"), OuterRef("id"))
    ).order_by("-created_at", "-id")
    Scan.objects.update(review_state=Subquery(newest.values("state")[:1]))


class Migration(migrations.Migration):
    dependencies = [
        ("qc", "0005_purgerecord"),
        ("studies", "0008_scan_review_state"),
    ]

    operations = [
        migrations.RunPython(fill_review_states, migrations.RunPython.noop, elidable=True),
    ]
