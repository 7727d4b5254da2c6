"""pg_trgm and the trigram indexes behind the ID search (qc/search.py).

The indexed expression had to be the one qc.search built for each name, or PostgreSQL could not
use the index. 0003 replaces these indexes with indexes on the stored search keys. Nothing
happens on SQLite, where the search does not use trigrams.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

KEY = "UPPER(REPLACE(REPLACE(REPLACE({column}, '_', ''), '-', ''), ' ', ''))"
INDEXES = (
    ("api_search_timepoint_key", "studies_timepoint", "name"),
    ("api_search_scan_key", "studies_scan", "name"),
)


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for index, table, column in INDEXES:
        key = KEY.format(column=column)
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {index} ON {table} USING gin (({key}) gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for index, _table, _column in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {index}")


class Migration(migrations.Migration):

    dependencies = [
        ("api", "0001_api_tokens"),
        ("studies", "0002_header_comparison_settings"),
    ]

    operations = [
        TrigramExtension(),
        migrations.RunPython(create_indexes, drop_indexes),
    ]
