"""Request ids in responses and log lines, and the JSON log format."""

import json
import logging

import pytest

from qcdash.log_format import JsonLinesFormatter
from qcdash.request_id import RequestIdFilter

pytestmark = pytest.mark.django_db


def test_response_carries_new_request_id(client):
    response = client.get("/healthz")
    assert len(response["X-Request-ID"]) == 32


def test_safe_incoming_request_id_kept(client):
    response = client.get("/healthz", headers={"X-Request-ID": "lb-1234.abc"})
    assert response["X-Request-ID"] == "lb-1234.abc"


@pytest.mark.parametrize("hostile", ["a b", "x" * 65, "id\nINFO forged line", "<script>"])
def test_unsafe_incoming_request_id_replaced(client, hostile):
    response = client.get("/healthz", headers={"X-Request-ID": hostile})
    assert response["X-Request-ID"] != hostile
    assert len(response["X-Request-ID"]) == 32


def test_json_formatter_writes_one_object_per_line():
    record = logging.LogRecord(
        "qc.services", logging.INFO, __file__, 1, "scan %s flagged", ("S1",), None
    )
    RequestIdFilter().filter(record)

    line = JsonLinesFormatter().format(record)

    entry = json.loads(line)
    assert "\n" not in line
    assert entry["message"] == "scan S1 flagged"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "qc.services"
    assert entry["request_id"] == "-"
