"""Feature-request triage in admin: access, changelist queries, status and merge actions."""

from django.core import mail

from feedback import services
from feedback.models import FeatureRequest, Vote

CHANGELIST = "/admin/feedback/featurerequest/"


def test_only_staff_reach_the_triage(client, customer, feature):
    client.force_login(customer)
    response = client.get(CHANGELIST)
    assert response.status_code == 302
    assert "/admin/login/" in response.url


def test_changelist_sorts_by_score_and_filters(client, agent, feature, customer, other_customer):
    low = services.request_submit(author=other_customer, title="Tiny tweak", kind="improvement")
    client.force_login(agent)
    response = client.get(CHANGELIST)
    assert list(response.context["cl"].result_list) == [feature, low]
    response = client.get(CHANGELIST, {"kind__exact": "improvement"})
    assert list(response.context["cl"].result_list) == [low]


def test_changelist_queries_are_bounded(
    client, agent, customer, other_customer, django_assert_max_num_queries
):
    for i in range(30):
        services.request_submit(author=customer if i % 2 else other_customer, title=f"Request {i}")
    client.force_login(agent)
    with django_assert_max_num_queries(12):
        assert client.get(CHANGELIST).status_code == 200


def test_change_page_lists_voters_with_their_organizations_mrr(
    client, agent, manager, feature, other_customer
):
    services.vote_cast(request=feature, user=other_customer, value=Vote.Value.UP)
    client.force_login(manager)
    body = client.get(f"{CHANGELIST}{feature.pk}/change/").content.decode()
    assert "Acme" in body and "2000.00" in body
    assert "Globex" in body and "100.00" in body
    client.force_login(agent)  # revenue is the managers' business
    body = client.get(f"{CHANGELIST}{feature.pk}/change/").content.decode()
    assert "Acme" in body and "2000.00" not in body and "MRR" not in body


def test_change_status_action_asks_for_a_note_then_notifies(
    client, agent, feature, other_customer, run_effects
):
    services.vote_cast(request=feature, user=other_customer, value=Vote.Value.UP)
    client.force_login(agent)
    selection = {"action": "change_status_action", "_selected_action": [feature.pk]}
    page = client.post(CHANGELIST, selection)
    assert page.status_code == 200
    assert "Change the status of feature requests" in page.content.decode()
    with run_effects():
        response = client.post(
            CHANGELIST, {**selection, "apply": "1", "status": "in_progress", "note": "Started!"}
        )
    assert response.status_code == 302
    feature.refresh_from_db()
    assert feature.status == "in_progress"
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        [feature.author.email, other_customer.email]
    )


def test_merge_action_picks_a_survivor(client, agent, feature, customer, other_customer):
    duplicate = services.request_submit(author=other_customer, title="Night theme please")
    client.force_login(agent)
    selection = {"action": "merge_action", "_selected_action": [feature.pk, duplicate.pk]}
    page = client.post(CHANGELIST, selection)
    assert "Pick the request that survives" in page.content.decode()
    response = client.post(CHANGELIST, {**selection, "apply": "1", "survivor": feature.pk})
    assert response.status_code == 302
    duplicate.refresh_from_db()
    feature.refresh_from_db()
    assert duplicate.merged_into == feature
    assert (feature.upvotes, feature.votes.count()) == (2, 2)


def test_merge_action_needs_two_requests(client, agent, feature):
    client.force_login(agent)
    response = client.post(
        CHANGELIST, {"action": "merge_action", "_selected_action": [feature.pk]}, follow=True
    )
    assert "Select at least two requests" in response.content.decode()
    assert FeatureRequest.objects.filter(merged_into__isnull=False).count() == 0
