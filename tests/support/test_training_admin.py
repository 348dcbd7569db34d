"""The review queue in admin: the original beside the anonymized text, approve with a
score (refused while personal data remains), reject with a reason."""

import pytest

from support import services
from support.models import TrainingExample
from tests.support.test_training import human_resolved

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/support/trainingexample/"


@pytest.fixture
def example(customer, agent):
    return services.training_example_harvest(ticket_id=human_resolved(customer, agent).pk)


def form_data(example, **overrides):
    return {
        "anonymized_question": example.anonymized_question,
        "anonymized_answer": example.anonymized_answer,
        "quality_score": "",
        "review_note": "",
        **overrides,
    }


def test_queue_lists_examples_awaiting_review_with_bounded_queries(
    client, agent, example, django_assert_max_num_queries
):
    client.force_login(agent)
    with django_assert_max_num_queries(10):
        response = client.get(CHANGELIST, {"status__exact": "pending"})
    assert list(response.context["cl"].result_list) == [example]


def test_review_page_shows_original_beside_anonymized(client, agent, example):
    client.force_login(agent)
    body = client.get(f"{CHANGELIST}{example.pk}/change/").content.decode()
    assert "Original (staff only)" in body and "4111 1111 1111 1111" in body
    assert "Anonymized (what the agent learns from)" in body and "[CARD]" in body
    assert 'name="_approve"' in body and 'name="_reject"' in body


def test_approve_needs_a_score_and_no_personal_data(client, agent, example):
    client.force_login(agent)
    url = f"{CHANGELIST}{example.pk}/change/"
    response = client.post(url, {**form_data(example), "_approve": "1"})
    assert response.status_code == 200
    assert "Give a quality score" in response.content.decode()

    leaky = form_data(example, quality_score="5")
    leaky["anonymized_answer"] += " Call +1 415 555 2671."
    response = client.post(url, {**leaky, "_approve": "1"})
    assert "Personal data remains: PHONE." in response.content.decode()
    example.refresh_from_db()
    assert example.status == "pending" and "555" not in example.anonymized_answer

    response = client.post(url, {**form_data(example, quality_score="5"), "_approve": "1"})
    assert response.status_code == 302
    example.refresh_from_db()
    assert (example.status, example.quality_score, example.reviewed_by) == ("approved", 5, agent)


def test_saving_an_edit_rescans_and_reject_needs_a_reason(client, agent, example):
    client.force_login(agent)
    url = f"{CHANGELIST}{example.pk}/change/"
    edited = form_data(example, anonymized_question="Charged twice on one invoice")
    assert client.post(url, {**edited, "_save": "1"}).status_code == 302
    example.refresh_from_db()
    assert example.anonymized_question == "Charged twice on one invoice"
    response = client.post(url, {**form_data(example), "_reject": "1"})
    assert "Say why the example is rejected." in response.content.decode()
    client.post(url, {**form_data(example, review_note="Duplicate of #3"), "_reject": "1"})
    example.refresh_from_db()
    assert (example.status, example.review_note) == ("rejected", "Duplicate of #3")
    assert not TrainingExample.objects.ready_for_training().exists()
