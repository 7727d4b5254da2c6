"""The PostgreSQL indexes on the stored search keys behind the ID search (qc/search.py).

Each of the timepoint, session and scan tables gets three indexes on `search_key`:

- `api_search_<model>_order`: a B-tree in code point order (collation "C"), which finds the keys
  that start with the query and returns them in key order;
- `api_search_<model>_hash`: a B-tree on the key's MD5, the order in which the search picks
  keys that contain the query elsewhere;
- `api_search_<model>_trigram`: a pg_trgm GIN index, which finds keys that contain the query or
  are close to it.

The expressions must match the ones qc/search.py builds, or PostgreSQL cannot use the indexes.
The trigram indexes on the key expression of 0002 are dropped, because the search now reads the
stored keys. Nothing happens on SQLite.
"""

from django.db import migrations

TABLES = (
    ("timepoint", "studies_timepoint"),
    ("session", "studies_session"),
    ("scan", "studies_scan"),
)
# The B-trees include the columns the search reads from them, so that it can read only the index.
INDEXES = (
    ("order", 'btree (search_key COLLATE "C") INCLUDE (id)'),
    ("hash", "btree (MD5(search_key)) INCLUDE (id, search_key)"),
    ("trigram", "gin (search_key gin_trgm_ops)"),
)
# The indexes of 0002, which reverting this migration creates again.
NAME_KEY = "UPPER(REPLACE(REPLACE(REPLACE(name, '_', ''), '-', ''), ' ', ''))"
EXPRESSION_INDEXES = (
    ("api_search_timepoint_key", "studies_timepoint"),
    ("api_search_scan_key", "studies_scan"),
)


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for model, table in TABLES:
        for purpose, method in INDEXES:
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS api_search_{model}_{purpose} ON {table} USING {method}"
            )
    for index, _table in EXPRESSION_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {index}")


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for index, table in EXPRESSION_INDEXES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {index} ON {table} USING gin (({NAME_KEY}) gin_trgm_ops)"
        )
    for model, _table in TABLES:
        for purpose, _method in INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS api_search_{model}_{purpose}")


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0002_trigram_search"),
        ("studies", "0010_search_keys"),
    ]

    operations = [
        migrations.RunPython(create_indexes, drop_indexes),
    ]
