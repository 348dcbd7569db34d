"""The training loop: harvesting rules, PII scrubbing, review states, reuse by the agent,
export formats, and who may see examples."""

import io
import json

import jsonschema
import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from core.errors import Conflict, DomainError, NotPermitted
from integrations.llm.local import LocalProvider
from support import services, tasks
from support.ai import pipeline
from support.models import TrainingExample
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

SECRET_BITS = ("casey@acme.example", "+44 20 7946 0958", "4111 1111 1111 1111", "Casey")


def ai_resolved(customer, rating=5):
    """A ticket the AI answered and resolved, rated by the customer."""
    ticket = services.ticket_open(
        requester=customer,
        subject="Forgot my password",
        description=(
            "How do I reset my password? I forgot it. This is Casey, casey@acme.example, "
            "call +44 20 7946 0958."
        ),
    )
    assert pipeline.analyze_ticket(ticket.pk, provider=LocalProvider()) == "resolved"
    ticket.refresh_from_db()
    services.ticket_rate(ticket=ticket, actor=customer, rating=rating)
    return ticket


def human_resolved(customer, agent, rating=4):
    """An escalated ticket a person resolved well, with a clarification on the way."""
    ticket = services.ticket_open(
        requester=customer,
        subject="Charged twice",
        description="I was charged twice on card 4111 1111 1111 1111 this month.",
        type="billing",
    )
    services.ticket_escalate(ticket=ticket, kind="policy", reason="refund", actor=agent)
    services.message_add(ticket=ticket, author=agent, body="Which invoice numbers, please?")
    services.message_add(ticket=ticket, author=customer, body="INV-2041 and INV-2042.")
    services.message_add(
        ticket=ticket,
        author=agent,
        body="Hi Casey, I refunded INV-2042; the money is back in 5 days. Alex",
    )
    services.ticket_resolve(ticket=ticket, actor=agent)
    services.message_add(
        ticket=ticket, author=agent, body="(note after resolution)", is_internal=True
    )
    ticket.refresh_from_db()
    services.ticket_rate(ticket=ticket, actor=customer, rating=rating)
    return ticket


@pytest.fixture
def casey(org_a):
    return CustomerFactory(
        username="casey", first_name="Casey", last_name="Quinn", profile__organization=org_a
    )


@pytest.fixture
def alex(db):
    from tests.factories import AgentFactory

    return AgentFactory(username="alex", first_name="Alex", last_name="Agent")


# ---- harvesting ------------------------------------------------------------------------------


def test_an_ai_resolution_rated_5_becomes_a_scrubbed_example(kb, casey):
    ticket = ai_resolved(casey)

    example = services.training_example_harvest(ticket_id=ticket.pk)

    ai_message = ticket.messages.get(sender_kind="ai")
    assert (example.ticket, example.source_message) == (ticket, ai_message)
    assert (example.outcome, example.author_kind) == ("successful", "ai")
    assert example.confidence == ai_message.ai_confidence
    assert example.satisfaction_rating == 5 and example.status == "pending"
    assert "casey@acme.example" in example.question  # the original, for staff
    for bit in SECRET_BITS:
        assert bit not in example.anonymized_question
    assert "[EMAIL]" in example.anonymized_question and "[PHONE]" in example.anonymized_question
    assert "[NAME]" in example.anonymized_question
    assert example.pii_found == ["EMAIL", "NAME", "PHONE"]
    assert example.pii_remaining == []
    assert example.embedding is not None and len(example.embedding) == 384


def test_an_escalated_ticket_resolved_by_a_person_is_harvested_as_human_written(casey, alex):
    ticket = human_resolved(casey, alex)

    example = services.training_example_harvest(ticket_id=ticket.pk)

    assert (example.outcome, example.author_kind, example.confidence) == (
        "escalated",
        "human",
        None,
    )
    assert example.answer.startswith("Hi Casey, I refunded INV-2042")
    assert example.anonymized_answer == (
        "Hi [NAME], I refunded INV-2042; the money is back in 5 days. [NAME]"
    )
    # Question: subject, description and the customer's clarification, in order.
    assert example.anonymized_question == (
        "Charged twice\n\nI was charged twice on card [CARD] this month.\n\nINV-2041 and INV-2042."
    )
    assert example.pii_found == ["CARD", "NAME"]


@pytest.mark.parametrize("rating", [1, 2, 3])
def test_tickets_rated_below_4_are_not_harvested(casey, alex, rating):
    ticket = human_resolved(casey, alex, rating=rating)
    assert services.training_example_harvest(ticket_id=ticket.pk) is None
    assert not TrainingExample.objects.exists()


def test_unrated_and_unanswered_tickets_are_not_harvested(casey):
    ticket = services.ticket_open(requester=casey, subject="Never mind", description="Found it.")
    assert services.training_example_harvest(ticket_id=ticket.pk) is None  # open, unrated
    services.ticket_resolve(ticket=ticket, actor=casey)
    services.ticket_rate(ticket=ticket, actor=casey, rating=5)
    assert services.training_example_harvest(ticket_id=ticket.pk) is None  # nobody answered
    assert not TrainingExample.objects.exists()


def test_harvesting_is_idempotent_and_runs_after_the_rating(casey, alex, run_effects):
    with run_effects():
        ticket = human_resolved(casey, alex)
    example = TrainingExample.objects.get(ticket=ticket)
    assert tasks.harvest_training_example(ticket.pk) == example.pk
    assert services.training_example_harvest(ticket_id=ticket.pk) == example
    assert TrainingExample.objects.count() == 1


def test_a_reopened_then_resolved_ticket_is_a_failed_first_attempt(kb, casey, alex):
    ticket = services.ticket_open(
        requester=casey, subject="Forgot my password", description="How do I reset my password?"
    )
    pipeline.analyze_ticket(ticket.pk, provider=LocalProvider())
    services.message_add(ticket=ticket, author=casey, body="That link does not arrive.")
    services.message_add(ticket=ticket, author=alex, body="Check the spam folder, it is there.")
    services.ticket_resolve(ticket=ticket, actor=alex)
    services.ticket_rate(ticket=ticket, actor=casey, rating=4)
    example = services.training_example_harvest(ticket_id=ticket.pk)
    assert (example.outcome, example.author_kind) == ("failed", "human")
    assert "That link does not arrive." in example.anonymized_question


# ---- review ----------------------------------------------------------------------------------


@pytest.fixture
def example(casey, alex):
    return services.training_example_harvest(ticket_id=human_resolved(casey, alex).pk)


def test_edits_are_scanned_again_and_block_approval_until_clean(example, agent):
    edited = services.training_example_edit(
        example=example,
        actor=agent,
        anonymized_question=example.anonymized_question + " Write to casey.q@acme.example",
        anonymized_answer=example.anonymized_answer,
    )
    assert edited.pii_remaining == ["EMAIL"]
    with pytest.raises(DomainError, match="Personal data remains"):
        services.training_example_approve(example=edited, actor=agent, quality_score=5)
    clean = services.training_example_edit(
        example=edited,
        actor=agent,
        anonymized_question=example.anonymized_question + " Write to [EMAIL]",
        anonymized_answer=example.anonymized_answer,
    )
    assert clean.pii_remaining == []
    approved = services.training_example_approve(example=clean, actor=agent, quality_score=5)
    assert (approved.status, approved.quality_score, approved.reviewed_by) == ("approved", 5, agent)
    assert list(TrainingExample.objects.ready_for_training()) == [approved]


def test_review_rules(example, agent, casey):
    with pytest.raises(NotPermitted):
        services.training_example_approve(example=example, actor=casey, quality_score=5)
    with pytest.raises(DomainError) as error:
        services.training_example_approve(example=example, actor=agent, quality_score=9)
    assert error.value.field == "quality_score"
    with pytest.raises(DomainError) as error:
        services.training_example_reject(example=example, actor=agent, reason=" ")
    assert error.value.field == "review_note"
    rejected = services.training_example_reject(example=example, actor=agent, reason="Too vague")
    assert rejected.status == "rejected" and not rejected.is_ready_for_training
    with pytest.raises(Conflict):
        services.training_example_approve(example=rejected, actor=agent, quality_score=4)


def test_editing_an_approved_example_sends_it_back_to_review(example, agent):
    services.training_example_approve(example=example, actor=agent, quality_score=4)
    edited = services.training_example_edit(
        example=example,
        actor=agent,
        anonymized_question="Charged twice for one invoice",
        anonymized_answer=example.anonymized_answer,
    )
    assert edited.status == "pending"
    assert not TrainingExample.objects.ready_for_training().exists()


# ---- reuse by the agent ----------------------------------------------------------------------


class RecordingProvider(LocalProvider):
    """The local provider, keeping the prompts it was given."""

    def __init__(self):
        super().__init__()
        self.prompts = []

    def complete(self, *, system, messages, schema, schema_name, context=None, **options):
        self.prompts.append(json.dumps(messages, default=str))
        return super().complete(
            system=system,
            messages=messages,
            schema=schema,
            schema_name=schema_name,
            context=context,
            **options,
        )


def test_the_agent_reuses_approved_examples_and_records_them(
    kb, casey, alex, other_customer, agent
):
    from automation.models import Rule

    # "Charged twice" is for people at once by the shipped rules: here the AI looks at it.
    Rule.objects.filter(is_default=True).update(is_enabled=False)
    example = services.training_example_harvest(ticket_id=human_resolved(casey, alex).pk)
    pending = RecordingProvider()
    ticket = services.ticket_open(
        requester=other_customer, subject="Charged twice", description="My card was charged twice."
    )
    pipeline.analyze_ticket(ticket.pk, provider=pending)
    assert "I refunded INV-2042" not in pending.prompts[0]  # not approved yet: not used

    services.training_example_approve(example=example, actor=agent, quality_score=5)
    provider = RecordingProvider()
    ticket = services.ticket_open(
        requester=other_customer,
        subject="Charged twice",
        description="I think I was charged twice this month.",
    )
    pipeline.analyze_ticket(ticket.pk, provider=provider)

    prompt = provider.prompts[0]
    assert "I refunded INV-2042" in prompt and "approved_resolution" in prompt
    for bit in SECRET_BITS:  # another customer's data never reaches this ticket's prompt
        assert bit not in prompt
    ai_messages = ticket.messages.filter(sender_kind="ai")  # escalated: an internal attempt
    assert [m.example_ids for m in ai_messages] == [[example.pk]]
    example.refresh_from_db()
    assert example.times_used_by_ai == 1


# ---- export ----------------------------------------------------------------------------------

# The documented shapes: OpenAI chat fine-tuning lines, Claude fine-tuning lines (Bedrock),
# and ours.
MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"enum": ["system", "user", "assistant"]},
        "content": {"type": "string", "minLength": 1},
    },
    "additionalProperties": False,
}
SCHEMAS = {
    "openai": {
        "type": "object",
        "required": ["messages"],
        "additionalProperties": False,
        "properties": {
            "messages": {
                "type": "array",
                "minItems": 2,
                "items": MESSAGE,
                "prefixItems": [{"properties": {"role": {"const": "system"}}}],
                "contains": {"properties": {"role": {"const": "assistant"}}},
            }
        },
    },
    "anthropic": {
        "type": "object",
        "required": ["system", "messages"],
        "additionalProperties": False,
        "properties": {
            "system": {"type": "string"},
            "messages": {
                "type": "array",
                "minItems": 2,
                "items": {
                    **MESSAGE,
                    "properties": {
                        **MESSAGE["properties"],
                        "role": {"enum": ["user", "assistant"]},
                    },
                },
                "prefixItems": [{"properties": {"role": {"const": "user"}}}],
            },
        },
    },
    "jsonl": {
        "type": "object",
        "required": [
            "id",
            "question",
            "answer",
            "ticket_type",
            "outcome",
            "author",
            "quality_score",
            "satisfaction_rating",
            "confidence",
            "pii_removed",
            "created_at",
            "reviewed_at",
        ],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "integer"},
            "question": {"type": "string", "minLength": 1},
            "answer": {"type": "string", "minLength": 1},
            "outcome": {"enum": ["successful", "escalated", "failed"]},
            "author": {"enum": ["ai", "human"]},
            "quality_score": {"type": "integer", "minimum": 1, "maximum": 5},
            "confidence": {"type": ["number", "null"]},
            "pii_removed": {"type": "array", "items": {"type": "string"}},
            "ticket_type": {"type": "string"},
            "satisfaction_rating": {"type": "integer", "minimum": 4, "maximum": 5},
            "created_at": {"type": "string", "format": "date-time"},
            "reviewed_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
}


def export(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("export_training_data", *args, stdout=out, stderr=err)
    return [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


@pytest.mark.parametrize("fmt", ["openai", "anthropic", "jsonl"])
def test_export_formats_follow_their_schemas_and_mark_examples_used(example, agent, fmt):
    services.training_example_approve(example=example, actor=agent, quality_score=5)
    rows, message = export("--format", fmt)
    assert len(rows) == 1 and "Exported 1 example" in message
    jsonschema.validate(rows[0], SCHEMAS[fmt])
    text = json.dumps(rows[0])
    assert "[CARD]" in text and "4111" not in text and "Casey" not in text
    example.refresh_from_db()
    assert example.used_in_training and example.exported_at
    assert export("--format", fmt)[0] == []  # already used
    assert len(export("--format", fmt, "--all")[0]) == 1


def test_only_approved_examples_are_exported(example, agent, casey, alex, kb):
    other = services.training_example_harvest(ticket_id=ai_resolved(casey).pk)
    services.training_example_approve(example=other, actor=agent, quality_score=4)
    rows, _ = export("--format", "jsonl")
    assert [r["id"] for r in rows] == [other.pk]  # the pending one stays out


def test_export_refuses_anything_with_personal_data_left(example, agent, tmp_path):
    services.training_example_approve(example=example, actor=agent, quality_score=5)
    # Text changed behind the services' back (e.g. a manual database edit).
    TrainingExample.objects.filter(pk=example.pk).update(
        anonymized_answer="Call me on +1 415 555 2671"
    )
    target = tmp_path / "out.jsonl"
    with pytest.raises(CommandError, match=r"Refusing to export.*PHONE"):
        call_command("export_training_data", "--format", "openai", "--output", str(target))
    assert not target.exists()
    example.refresh_from_db()
    assert not example.used_in_training


def test_export_since_and_output_file(example, agent, tmp_path):
    services.training_example_approve(example=example, actor=agent, quality_score=5)
    assert export("--since", "2999-01-01")[0] == []
    with pytest.raises(CommandError, match="--since"):
        export("--since", "yesterday")
    target = tmp_path / "sub" / "train.jsonl"
    call_command(
        "export_training_data", "--format", "openai", "--output", str(target), stderr=io.StringIO()
    )
    assert len(target.read_text().splitlines()) == 1


# ---- who sees examples -----------------------------------------------------------------------


def test_customers_can_never_reach_examples(example, casey, other_customer, agent, client):
    for user in (casey, other_customer):
        api = APIClient()
        api.force_authenticate(user)
        assert api.get("/api/training-examples/").status_code == 403
        assert api.get(f"/api/training-examples/{example.pk}/").status_code == 403
        client.force_login(user)
        response = client.get(f"/admin/support/trainingexample/{example.pk}/change/")
        assert response.status_code == 302 and "/admin/login/" in response.url
    api = APIClient()
    api.force_authenticate(agent)
    body = api.get(f"/api/training-examples/{example.pk}/").json()
    assert body["anonymized_question"].startswith("Charged twice")
    assert "question" not in body and "answer" not in body  # originals stay in admin


def test_api_review_actions(example, agent):
    api = APIClient()
    api.force_authenticate(agent)
    url = f"/api/training-examples/{example.pk}/"
    response = api.post(f"{url}approve/", {"quality_score": 7}, format="json")
    assert response.status_code == 400 and "quality_score" in response.json()
    response = api.patch(
        url,
        {"anonymized_question": "Mail me at dana@x.example", "anonymized_answer": "Done."},
        format="json",
    )
    assert response.json()["pii_remaining"] == ["EMAIL"]
    assert api.post(f"{url}approve/", {"quality_score": 4}, format="json").status_code == 400
    assert (
        api.post(f"{url}reject/", {"reason": "Leaks an address"}, format="json").json()["status"]
        == "rejected"
    )
