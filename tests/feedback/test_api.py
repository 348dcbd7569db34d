"""The feature-request API: public reads, signed-in writes, staff actions, errors, queries."""

import pytest
from rest_framework.test import APIClient

from feedback import services
from feedback.models import FeatureRequest, Vote
from feedback.throttling import FeedbackThrottle

LIST = "/api/feature-requests/"


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_anyone_lists_public_requests_with_counts(feature, customer):
    services.request_submit(author=customer, title="Hidden plan", is_public=False)
    data = api().get(LIST).json()
    assert [r["title"] for r in data["results"]] == ["Dark mode for the dashboard"]
    row = data["results"][0]
    assert (row["upvotes"], row["downvotes"], row["weighted_score"]) == (1, 0, "2.3222")
    assert row["my_vote"] is None
    assert row["admin_notes"] is None
    assert row["author"] == "Casey"  # a display name, never an email
    assert "email" not in str(row)


def test_my_vote_and_mine_filter(feature, other_customer, customer):
    services.request_submit(author=customer, title="Webhooks for everything")
    client = api(other_customer)
    client.post(f"{LIST}{feature.pk}/vote/", {"value": "down"}, format="json")
    rows = client.get(LIST, {"mine": "true"}).json()["results"]
    assert [(r["id"], r["my_vote"]) for r in rows] == [(feature.pk, -1)]


def test_filters_search_and_ordering(customer, other_customer, agent):
    a = services.request_submit(author=customer, title="Export reports to PDF")
    b = services.request_submit(author=customer, title="Keyboard shortcuts", kind="improvement")
    services.vote_cast(request=b, user=other_customer, value=Vote.Value.UP)
    services.request_change_status(request=a, status="planned", actor=agent)
    ids = lambda params: [r["id"] for r in api().get(LIST, params).json()["results"]]  # noqa: E731
    assert ids({"status": "planned"}) == [a.pk]
    assert ids({"kind": "improvement"}) == [b.pk]
    assert ids({"q": "exported report"}) == [a.pk]
    assert ids({"ordering": "-created_at"}) == [b.pk, a.pk]
    assert ids({"ordering": "-weighted_score"}) == [b.pk, a.pk]
    response = api().get(LIST, {"status": "shipped"})
    assert response.status_code == 400
    assert "status" in response.json()


def test_create_needs_sign_in_and_gives_field_errors(customer):
    assert api().post(LIST, {"title": "Anonymous idea"}, format="json").status_code in (401, 403)
    response = api(customer).post(LIST, {"title": "abc", "kind": "wish"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) >= {"title", "kind"}
    response = api(customer).post(
        LIST, {"title": "Audit log export", "description": "For SOC 2."}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["upvotes"], body["my_vote"], body["status"]) == (1, 1, "open")
    assert FeatureRequest.objects.get(pk=body["id"]).author == customer


def test_create_is_rate_limited(customer, monkeypatch):
    monkeypatch.setitem(FeedbackThrottle.THROTTLE_RATES, "feedback_submit", "1/hour")
    client = api(customer)
    assert client.post(LIST, {"title": "One request"}, format="json").status_code == 201
    response = client.post(LIST, {"title": "Two requests"}, format="json")
    assert response.status_code == 429
    assert FeatureRequest.objects.count() == 1


def test_cast_change_and_withdraw_a_vote(feature, other_customer):
    client = api(other_customer)
    url = f"{LIST}{feature.pk}/vote/"
    assert client.post(url, {"value": "up"}, format="json").json()["upvotes"] == 2
    body = client.post(url, {"value": "down"}, format="json").json()
    assert (body["upvotes"], body["downvotes"], body["my_vote"]) == (1, 1, -1)
    body = client.delete(url).json()
    assert (body["upvotes"], body["downvotes"], body["my_vote"]) == (1, 0, None)
    response = client.post(url, {"value": "maybe"}, format="json")
    assert response.status_code == 400
    assert "value" in response.json()


def test_anonymous_cannot_vote(feature):
    response = api().post(f"{LIST}{feature.pk}/vote/", {"value": "up"}, format="json")
    assert response.status_code in (401, 403)
    feature.refresh_from_db()
    assert feature.upvotes == 1


def test_voting_on_a_closed_request_is_a_conflict(feature, agent, other_customer):
    services.request_change_status(request=feature, status="wont_fix", actor=agent)
    response = api(other_customer).post(f"{LIST}{feature.pk}/vote/", {"value": "up"}, format="json")
    assert response.status_code == 409
    assert "Voting is closed" in response.json()["detail"]


def test_only_staff_change_status_and_merge(feature, customer, agent, run_effects):
    url = f"{LIST}{feature.pk}/status/"
    assert api(customer).post(url, {"status": "planned"}, format="json").status_code == 403
    with run_effects():
        response = api(agent).post(url, {"status": "planned", "note": "Q1"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "planned"
    assert api(agent).post(url, {"status": "planned"}, format="json").status_code == 409
    history = api().get(f"{LIST}{feature.pk}/history/").json()
    assert [h["kind"] for h in history] == ["submitted", "status_changed"]
    assert history[1]["note"] == "Q1"

    duplicate = services.request_submit(author=customer, title="Night mode")
    merge = f"{LIST}{duplicate.pk}/merge/"
    assert api(customer).post(merge, {"into": feature.pk}, format="json").status_code == 403
    response = api(agent).post(merge, {"into": feature.pk}, format="json")
    assert response.status_code == 200
    assert response.json()["id"] == feature.pk
    assert duplicate.pk not in [r["id"] for r in api().get(LIST).json()["results"]]
    assert api().get(f"{LIST}{duplicate.pk}/").json()["merged_into"] == feature.pk


def test_staff_see_admin_notes(feature, agent):
    FeatureRequest.objects.filter(pk=feature.pk).update(admin_notes="Big deal for Acme")
    assert api(agent).get(f"{LIST}{feature.pk}/").json()["admin_notes"] == "Big deal for Acme"
    assert api().get(f"{LIST}{feature.pk}/").json()["admin_notes"] is None


def test_list_queries_are_bounded(customer, other_customer, django_assert_max_num_queries):
    for i in range(20):
        feature = services.request_submit(author=customer, title=f"Request number {i}")
        services.vote_cast(request=feature, user=other_customer, value=Vote.Value.UP)
    client = api(other_customer)
    with django_assert_max_num_queries(3):
        assert client.get(LIST).status_code == 200


@pytest.mark.parametrize("path", ["/api/feature-requests/", "/api/feature-requests/{id}/vote/"])
def test_schema_documents_the_endpoints(client, path):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert path in schema["paths"]
