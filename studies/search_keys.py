"""The search key of an ID: upper case, with the separators `_`, `-` and whitespace removed.

The ID search (qc/search.py) compares a query and every timepoint, session and scan name by
this key, so `spn01 cmh-0001` finds `SPN01_CMH_0001_01`. Timepoints and scans store the key of
their name in a generated column. A session's name joins its timepoint's name and its number,
which a generated column cannot read, so Session stores its key when it is saved.
"""

import re

from django.db.models import Value
from django.db.models.functions import Replace, Upper

SEPARATORS = ("_", "-", " ")
_SEPARATOR_PATTERN = re.compile(r"[\s_\-]+")


def search_key(text):
    """Return the key a query or name is compared by: upper case, without `_`, `-` and spaces."""
    return _SEPARATOR_PATTERN.sub("", text).upper()


def search_key_expression(expression):
    """Build the database form of `search_key` for a name column or expression.

    NOTE: the database removes only the space among whitespace characters, and SQLite's UPPER
    changes only ASCII letters. Datman IDs contain neither other whitespace nor non-ASCII
    letters, so their keys agree with `search_key`.
    """
    for separator in SEPARATORS:
        expression = Replace(expression, Value(separator), Value(""))
    return Upper(expression)


def session_search_key(timepoint_name, number):
    """Return the search key of the session `number` of the timepoint `timepoint_name`.

    A phantom's session is named like its timepoint, but the key always has the number, because
    the search leaves phantom sessions out and the key then need not follow `is_phantom`.
    """
    return search_key(f"{timepoint_name}_{number:02d}")
