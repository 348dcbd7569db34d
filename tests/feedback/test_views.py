"""The public roadmap pages: reading, voting with and without JavaScript, submitting,
rate limits and errors."""

import pytest
from django.urls import reverse

from feedback import services
from feedback.models import FeatureRequest, Vote
from feedback.throttling import FeedbackThrottle


@pytest.fixture
def board(feature, agent, customer):
    planned = services.request_submit(author=customer, title="Slack notifications")
    services.request_change_status(request=planned, status="planned", actor=agent)
    building = services.request_submit(author=customer, title="SAML single sign-on")
    services.request_change_status(request=building, status="in_progress", actor=agent)
    done = services.request_submit(author=customer, title="CSV export of tickets")
    services.request_change_status(request=done, status="completed", actor=agent)
    private = services.request_submit(author=customer, title="Secret idea", is_public=False)
    return {
        "open": feature,
        "planned": planned,
        "building": building,
        "done": done,
        "private": private,
    }


def test_anonymous_visitors_read_the_roadmap_columns_and_open_list(client, board):
    response = client.get("/roadmap/")
    assert response.status_code == 200
    columns = response.context["columns"]
    assert [f.title for f in columns["planned"]] == ["Slack notifications"]
    assert [f.title for f in columns["in_progress"]] == ["SAML single sign-on"]
    assert [f.title for f in columns["completed"]] == ["CSV export of tickets"]
    assert [f.title for f in response.context["page"]] == ["Dark mode for the dashboard"]
    body = response.content.decode()
    assert "Secret idea" not in body
    assert 'name="value" value="up"' in body  # plain form buttons, no JS needed


def test_open_list_searches_sorts_and_filters(client, customer, other_customer):
    old = services.request_submit(author=customer, title="Export reports to PDF")
    new = services.request_submit(author=customer, title="Keyboard shortcuts", kind="improvement")
    services.vote_cast(request=old, user=other_customer, value=Vote.Value.UP)
    titles = lambda response: [f.title for f in response.context["page"]]  # noqa: E731
    assert titles(client.get("/roadmap/", {"sort": "top"})) == [old.title, new.title]
    assert titles(client.get("/roadmap/", {"sort": "new"})) == [new.title, old.title]
    assert titles(client.get("/roadmap/", {"q": "exporting pdf"})) == [old.title]  # stemmed
    assert titles(client.get("/roadmap/", {"kind": "improvement"})) == [new.title]


def test_private_requests_are_seen_by_their_author_and_staff_only(
    client, board, customer, other_customer, agent
):
    url = board["private"].get_absolute_url()
    assert client.get(url).status_code == 404
    client.force_login(other_customer)
    assert client.get(url).status_code == 404
    client.force_login(customer)
    assert client.get(url).status_code == 200
    client.force_login(agent)
    assert client.get(url).status_code == 200


def test_detail_shows_description_and_status_history(client, board):
    response = client.get(board["planned"].get_absolute_url())
    body = response.content.decode()
    assert response.status_code == 200
    assert "Status history" in body
    assert "Open → <strong>Planned</strong>" in body


def test_a_merged_duplicate_redirects_to_its_survivor(client, feature, customer, agent):
    duplicate = services.request_submit(author=customer, title="Night theme")
    services.request_merge(duplicate=duplicate, survivor=feature, actor=agent)
    response = client.get(duplicate.get_absolute_url())
    assert response.status_code == 302
    assert response.url == feature.get_absolute_url()


def test_anonymous_vote_goes_to_sign_in_and_counts_nothing(client, feature):
    vote_url = reverse("feedback:vote", args=[feature.pk])
    response = client.post(vote_url, {"value": "up"})
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    response = client.post(vote_url, {"value": "up"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    assert response.json()["login_url"].startswith(reverse("login"))
    feature.refresh_from_db()
    assert feature.upvotes == 1


def test_voting_without_javascript_posts_and_comes_back(client, feature, other_customer):
    client.force_login(other_customer)
    response = client.post(
        reverse("feedback:vote", args=[feature.pk]), {"value": "up", "next": "/roadmap/?sort=new"}
    )
    assert response.status_code == 302
    assert response.url == "/roadmap/?sort=new"
    feature.refresh_from_db()
    assert feature.upvotes == 2
    page = client.get(feature.get_absolute_url()).content.decode()
    assert 'value="withdraw"' in page and 'aria-pressed="true"' in page


def test_next_must_stay_on_this_site(client, feature, other_customer):
    client.force_login(other_customer)
    response = client.post(
        reverse("feedback:vote", args=[feature.pk]), {"value": "up", "next": "https://evil.test/"}
    )
    assert response.url == feature.get_absolute_url()


def test_voting_with_javascript_answers_json_counts(client, feature, other_customer):
    client.force_login(other_customer)
    url = reverse("feedback:vote", args=[feature.pk])
    data = client.post(url, {"value": "down"}, HTTP_ACCEPT="application/json").json()
    assert (data["upvotes"], data["downvotes"], data["my_vote"]) == (1, 1, -1)
    data = client.post(url, {"value": "withdraw"}, HTTP_ACCEPT="application/json").json()
    assert (data["upvotes"], data["downvotes"], data["my_vote"]) == (1, 0, None)


def test_vote_errors_are_clear(client, board, other_customer):
    client.force_login(other_customer)
    url = reverse("feedback:vote", args=[board["done"].pk])
    response = client.post(url, {"value": "up"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 409
    assert "Voting is closed" in response.json()["error"]
    response = client.post(
        reverse("feedback:vote", args=[board["open"].pk]),
        {"value": "sideways"},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 400
    assert response.json()["error"] == "Choose up, down or withdraw."


def test_voting_is_rate_limited(client, feature, other_customer, monkeypatch):
    monkeypatch.setitem(FeedbackThrottle.THROTTLE_RATES, "feedback_vote", "2/hour")
    client.force_login(other_customer)
    url = reverse("feedback:vote", args=[feature.pk])
    for value in ("up", "down"):
        assert client.post(url, {"value": value}, HTTP_ACCEPT="application/json").status_code == 200
    response = client.post(url, {"value": "up"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 429
    assert "try again in" in response.json()["error"]
    feature.refresh_from_db()
    assert (feature.upvotes, feature.downvotes) == (1, 1)


def test_submitting_needs_an_account(client):
    response = client.get(reverse("feedback:submit"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_submit_form_creates_the_request_with_the_authors_vote(client, customer):
    client.force_login(customer)
    response = client.post(
        reverse("feedback:submit"),
        {"title": "Zapier integration", "kind": "feature_request", "description": "For *flows*."},
    )
    feature = FeatureRequest.objects.get(title="Zapier integration")
    assert response.status_code == 302
    assert response.url == feature.get_absolute_url()
    assert (feature.author, feature.upvotes) == (customer, 1)


def test_submit_form_shows_field_errors(client, customer):
    client.force_login(customer)
    response = client.post(reverse("feedback:submit"), {"title": "Hey", "kind": "wish"})
    assert response.status_code == 400
    form = response.context["form"]
    assert "title" in form.errors and "kind" in form.errors
    assert not FeatureRequest.objects.exists()


def test_submitting_is_rate_limited(client, customer, monkeypatch):
    monkeypatch.setitem(FeedbackThrottle.THROTTLE_RATES, "feedback_submit", "1/hour")
    client.force_login(customer)
    data = {"title": "First request here", "kind": "feature_request"}
    assert client.post(reverse("feedback:submit"), data).status_code == 302
    response = client.post(reverse("feedback:submit"), {**data, "title": "Second request here"})
    assert response.status_code == 400
    assert "try again in" in response.content.decode()
    assert FeatureRequest.objects.count() == 1


def test_roadmap_page_queries_do_not_grow_with_requests(
    client, customer, other_customer, django_assert_max_num_queries
):
    for i in range(25):
        feature = services.request_submit(author=customer, title=f"Request number {i}")
        services.vote_cast(request=feature, user=other_customer, value=Vote.Value.UP)
    client.force_login(other_customer)
    with django_assert_max_num_queries(10):
        assert client.get("/roadmap/").status_code == 200
