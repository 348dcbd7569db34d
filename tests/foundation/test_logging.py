import json
import logging

import pytest

from config.observability import JsonFormatter, RequestIdFilter, request_id_var


@pytest.mark.django_db
def test_every_response_carries_a_request_id(client, caplog):
    caplog.set_level(logging.INFO, logger="helpdesk.request")

    response = client.get("/health/")

    request_id = response["X-Request-ID"]
    assert len(request_id) == 32
    record = next(r for r in caplog.records if r.name == "helpdesk.request")
    assert record.request_id == request_id
    assert record.status == 200
    assert record.path == "/health/"


def test_a_well_formed_incoming_request_id_is_kept(client):
    response = client.get("/health/", HTTP_X_REQUEST_ID="lb-7f3a2c9e-0001")

    assert response["X-Request-ID"] == "lb-7f3a2c9e-0001"


def test_a_malformed_incoming_request_id_is_replaced(client):
    response = client.get("/health/", HTTP_X_REQUEST_ID="<script>")

    assert response["X-Request-ID"] != "<script>"
    assert len(response["X-Request-ID"]) == 32


def test_json_lines_carry_the_request_id_and_extra_fields():
    record = logging.makeLogRecord(
        {
            "name": "helpdesk.test",
            "levelname": "INFO",
            "msg": "ticket %s opened",
            "args": ("HD-1",),
            "ticket": "HD-1",
        }
    )
    token = request_id_var.set("abc123def456")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)

    line = json.loads(JsonFormatter().format(record))

    assert line["message"] == "ticket HD-1 opened"
    assert line["request_id"] == "abc123def456"
    assert line["ticket"] == "HD-1"
    assert line["level"] == "INFO"
