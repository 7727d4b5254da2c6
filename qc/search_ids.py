"""The statement that finds the ids an ID search shows (qc/search.py), for every kind at once.

For each kind (timepoints, sessions, scans) it selects two groups of ids, each of at most
`limit` + 1 rows that the user may see. The `prefix` group has keys that start with the query
key, in key order. The `rest` group has keys that contain it elsewhere, in the order of the MD5
of the key. That order is stable but unrelated to the name. IDs that contain a site or study
code sit together in key order, so a search for the code in key order could read most of a
table before it reached them.

Each group first reads at most EXAMINED_ROWS rows in its order, from an index on PostgreSQL
(api/migrations/0003 creates them), and keeps the first `limit` + 1 that match and that the user
may see (`*_seen`). When that finds fewer and rows were left unread, `*_fallback` collects every
visible match and sorts them, so its cost grows with the number of matches (or of visible rows,
whichever PostgreSQL reads). That happens when few IDs contain the query, or when the user may
see few of those that do. The fallback orders by an expression that no index returns, so that
PostgreSQL does not walk an index past rows the user may not see. A fallback that is not needed
gets LIMIT 0, so PostgreSQL does not start it, while a condition in its WHERE clause still
started its parallel workers. The `rest` group is skipped when the `prefix` group is full,
because none of it would be shown, and because when nearly every key that contains the query
starts with it, its fallback would read them all.

The ids come from one statement and the rows from one query per kind (qc/search.py). Joined
into one query, PostgreSQL 15 took 9 ms to plan the scans of the `stretch` benchmark database,
against 4 ms for the two apart (EXPLAIN on a 2-core virtual machine).
"""

from django.core.exceptions import EmptyResultSet
from django.db import connection

# How many rows each group reads in its order before it falls back to collecting every visible
# match. A larger number reads more index entries when few rows match, and falls back less often
# for users who may see a small part of the data.
EXAMINED_ROWS = 1000

# The ids of one kind. The `prefix` group is full when either of its parts has {group_size}
# rows, because the fallback, when it runs, finds every row the first part found.
_KIND_SQL = """
WITH prefix_seen AS (
    SELECT candidate.id FROM (
        SELECT entry.id, entry.search_key{collation} AS ordered_key FROM {table} AS entry
        WHERE entry.search_key{collation} LIKE %s ESCAPE '\\'
        ORDER BY ordered_key
        LIMIT {examined}
    ) AS candidate
    WHERE candidate.id IN ({visible})
    ORDER BY candidate.ordered_key
    LIMIT {group_size}
),
prefix_fallback AS (
    SELECT candidate.id FROM {table} AS candidate
    WHERE candidate.search_key{collation} LIKE %s ESCAPE '\\'
    AND candidate.id IN ({visible})
    ORDER BY (candidate.search_key || ''){collation}
    LIMIT (
        SELECT CASE WHEN (SELECT COUNT(*) FROM prefix_seen) < {group_size} AND EXISTS (
            SELECT 1 FROM {table} AS entry
            WHERE entry.search_key{collation} LIKE %s ESCAPE '\\'
            LIMIT 1 OFFSET {last_examined}
        ) THEN {group_size} ELSE 0 END
    )
),
prefix_full AS (
    SELECT (SELECT COUNT(*) FROM prefix_seen) >= {group_size}
    OR (SELECT COUNT(*) FROM prefix_fallback) >= {group_size} AS is_full
),
rest_seen AS (
    SELECT candidate.id FROM (
        SELECT entry.id, entry.search_key, MD5(entry.search_key) AS hash FROM {table} AS entry
        ORDER BY hash
        LIMIT {examined}
    ) AS candidate
    WHERE NOT (SELECT is_full FROM prefix_full)
    AND candidate.search_key LIKE %s ESCAPE '\\'
    AND NOT candidate.search_key{collation} LIKE %s ESCAPE '\\'
    AND candidate.id IN ({visible})
    ORDER BY candidate.hash
    LIMIT {group_size}
),
rest_fallback AS (
    SELECT candidate.id FROM {table} AS candidate
    WHERE candidate.search_key LIKE %s ESCAPE '\\'
    AND NOT candidate.search_key{collation} LIKE %s ESCAPE '\\'
    AND candidate.id IN ({visible})
    ORDER BY MD5(candidate.search_key || '')
    LIMIT (
        SELECT CASE WHEN NOT (SELECT is_full FROM prefix_full)
        AND (SELECT COUNT(*) FROM rest_seen) < {group_size}
        AND EXISTS (SELECT 1 FROM {table} AS entry LIMIT 1 OFFSET {last_examined})
        THEN {group_size} ELSE 0 END
    )
)
SELECT id FROM prefix_seen
UNION ALL SELECT id FROM prefix_fallback
UNION ALL SELECT id FROM rest_seen
UNION ALL SELECT id FROM rest_fallback
"""


def match_ids(kinds, key, limit):
    """Return the ids to show of each kind whose key contains `key`, as {kind name: [id, ...]}.

    `kinds` is a sequence of (name, visible) pairs, where `visible` is the queryset of the rows
    the user may see. Runs one query, or none when the user may see no row of any kind.
    """
    parts, params = [], []
    for position, (_name, visible) in enumerate(kinds):
        try:
            kind_sql, kind_params = _kind_sql(visible, key, limit)
        except EmptyResultSet:
            # The user may see no row of this kind (an empty `pk__in` filter compiles to nothing).
            continue
        # The SQL is fixed text, quoted table names and SQL that Django compiled; the key is a
        # parameter.
        parts.append(f"SELECT {position} AS kind, kind_ids.id FROM ({kind_sql}) AS kind_ids")  # noqa: S608
        params.extend(kind_params)
    ids = {name: [] for name, _visible in kinds}
    if not parts:
        return ids
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        for position, pk in cursor.fetchall():
            ids[kinds[position][0]].append(pk)
    return ids


def _kind_sql(visible, key, limit):
    """Return the SQL and parameters that select the ids of one kind; raise EmptyResultSet when
    `visible` is empty whatever the data."""
    visible_sql, visible_params = visible.order_by().values("pk").query.sql_with_params()
    sql = _KIND_SQL.format(
        table=connection.ops.quote_name(visible.model._meta.db_table),
        collation=' COLLATE "C"' if connection.vendor == "postgresql" else "",
        examined=EXAMINED_ROWS,
        last_examined=EXAMINED_ROWS - 1,
        group_size=limit + 1,
        visible="{visible}",
    ).replace("{visible}", visible_sql)
    escaped = connection.ops.prep_for_like_query(key)
    starts, contains = f"{escaped}%", f"%{escaped}%"
    params = [
        *(starts, *visible_params),
        *(starts, *visible_params, starts),
        *(contains, starts, *visible_params),
        *(contains, starts, *visible_params),
    ]
    return sql, params
