"""What the schemathesis run found, pinned down: the API reads input as strictly as its
OpenAPI schema describes it, and the schema lists the errors a client can receive."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from knowledge.models import Category

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_number_is_not_text_nor_a_boolean(customer, ticket):
    messages = f"/api/tickets/{ticket.reference}/messages/"

    as_number = api(customer).post(messages, {"body": 0}, format="json")
    as_int_flag = api(customer).post(messages, {"body": "Hi", "is_internal": 0}, format="json")
    as_text = api(customer).post(messages, {"body": "0"}, format="json")

    assert as_number.status_code == 400 and as_number.json() == {"body": ["Must be a string."]}
    assert as_int_flag.status_code == 400 and "is_internal" in as_int_flag.json()
    assert as_text.status_code == 201


def test_text_is_measured_as_sent_not_after_trimming(customer):
    subject = " " + "x" * 200  # 201 characters; 200 once trimmed

    response = api(customer).post(
        "/api/tickets/", {"subject": subject, "description": "d"}, format="json"
    )

    assert response.status_code == 400 and "subject" in response.json()


@pytest.mark.parametrize(
    "query",
    ["unassigned=null", "unassigned=maybe", "created_before=", "channel=", "page_size=abc"],
)
def test_queries_the_api_cannot_read_answer_400(agent, query):
    response = api(agent).get(f"/api/tickets/?{query}")

    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


def test_readable_queries_still_filter(agent, ticket):
    response = api(agent).get("/api/tickets/?unassigned=true&page_size=5")

    assert response.status_code == 200
    assert [t["reference"] for t in response.json()["results"]] == [ticket.reference]


def test_a_category_cannot_sit_inside_itself(agent):
    root = Category.objects.create(name="Help", slug="help")
    child = Category.objects.create(name="Billing", slug="billing", parent=root)

    itself = api(agent).patch("/api/categories/help/", {"parent": "help"}, format="json")
    own_child = api(agent).patch("/api/categories/help/", {"parent": "billing"}, format="json")

    assert itself.status_code == 400 and own_child.status_code == 400
    root.refresh_from_db()
    assert root.parent is None and child.parent == root


def test_the_schema_lists_error_answers_with_their_body():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    create = schema["paths"]["/api/tickets/"]["post"]["responses"]
    me = schema["paths"]["/api/me/"]["get"]["responses"]
    articles = schema["paths"]["/api/articles/"]["get"]["responses"]

    assert {"400", "401", "403", "409", "413", "415", "429", "500", "503"} <= set(create)
    assert "Retry-After" in create["429"]["headers"]
    assert create["429"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    assert "404" not in me and "409" not in me  # no path parameter, not a write
    assert "403" not in articles  # anyone may read the articles
    assert schema["components"]["schemas"]["Error"]["required"] == ["detail"]
