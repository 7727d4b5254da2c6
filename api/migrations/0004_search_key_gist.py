"""A pg_trgm GiST index on the stored search key of timepoints, sessions and scans.

The ID search falls back to the keys closest to the query when no key contains it
(`qc.search._similar`). The GIN index of 0003 can only list every key above the similarity
threshold, and in a study whose IDs share most of their trigrams that is most of the table.
Ordered by the distance operator `<->>`, the GiST index returns the closest keys first, so the
search reads a bounded number of them.

The index is on `search_key || ''`, the expression `qc.search.close_rows` compares, and not on
the column. PostgreSQL 15 would otherwise pick it for the LIKE filters on the column, which the
GIN index of 0003 serves faster. Nothing happens on SQLite.
"""

from django.db import migrations

TABLES = (
    ("timepoint", "studies_timepoint"),
    ("session", "studies_session"),
    ("scan", "studies_scan"),
)


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for model, table in TABLES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS api_search_{model}_closest ON {table} "
            "USING gist ((search_key || '') gist_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for model, _table in TABLES:
        schema_editor.execute(f"DROP INDEX IF EXISTS api_search_{model}_closest")


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0003_search_key_indexes"),
    ]

    operations = [
        migrations.RunPython(create_indexes, drop_indexes),
    ]
