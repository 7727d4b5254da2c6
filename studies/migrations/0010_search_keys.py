"""Store the ID search's key of every timepoint, session and scan name (studies/search_keys.py).

Timepoints and scans compute it in a generated column, which PostgreSQL fills by rewriting the
table. Sessions store theirs in a plain column, filled here for the existing rows as the key of
the timepoint followed by the session number in at least two digits.
"""

from django.db import migrations, models
from django.db.models import CharField, OuterRef, Subquery, Value
from django.db.models.functions import Cast, Concat, Replace, Upper

# The key of the name, as studies.search_keys.search_key_expression builds it.
NAME_KEY = Upper(
    Replace(
        Replace(Replace(models.F("name"), Value("_"), Value("")), Value("-"), Value("")),
        Value(" "),
        Value(""),
    )
)


def fill_session_keys(apps, schema_editor):
    Session = apps.get_model("studies", "Session")
    Timepoint = apps.get_model("studies", "Timepoint")
    timepoint_key = Timepoint.objects.filter(pk=OuterRef("timepoint_id")).values("search_key")
    number = Cast("number", output_field=CharField())
    two_digits = models.Case(
        models.When(number__lt=10, then=Concat(Value("0"), number)),
        default=number,
        output_field=CharField(),
    )
    Session.objects.update(
        search_key=Concat(Subquery(timepoint_key), two_digits, output_field=CharField())
    )


class Migration(migrations.Migration):
    dependencies = [
        ("studies", "0009_scan_file_stats"),
    ]

    operations = [
        migrations.AddField(
            model_name="timepoint",
            name="search_key",
            field=models.GeneratedField(
                db_persist=True,
                expression=NAME_KEY,
                output_field=models.CharField(max_length=128),
            ),
        ),
        migrations.AddField(
            model_name="scan",
            name="search_key",
            field=models.GeneratedField(
                db_persist=True,
                expression=NAME_KEY,
                output_field=models.CharField(max_length=255),
            ),
        ),
        migrations.AddField(
            model_name="session",
            name="search_key",
            field=models.CharField(
                default="",
                editable=False,
                help_text="The ID search's key of the session ID, set by save() and bulk_create().",
                max_length=134,
            ),
            preserve_default=False,
        ),
        migrations.RunPython(fill_session_keys, migrations.RunPython.noop),
    ]
