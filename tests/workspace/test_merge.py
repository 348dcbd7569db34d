"""Merge a duplicate into the ticket that stays, split messages off into a new ticket
(issue 20): nothing is lost (messages, attachments, participants, events: counts before
and after), the customer is told once, replies to a merged ticket reach the survivor, and
the doors (admin, API, portal, email) refuse what they must."""

from __future__ import annotations

import threading

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import close_old_connections, connection
from django.urls import reverse
from rest_framework.test import APIClient

from core.errors import Conflict, DomainError, NotPermitted
from core.models import OutboxItem
from support import services
from support.email.addresses import reply_address
from support.models import (
    Attachment,
    Escalation,
    Message,
    SupportAddress,
    Tag,
    Ticket,
    TicketEvent,
    TicketParticipant,
    TicketTag,
)
from tests.factories import AgentFactory, CustomerFactory

# ---- helpers ---------------------------------------------------------------------------


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def act(client, ticket, action, data):
    return client.post(reverse("admin:support_ticket_act", args=[ticket.pk, action]), data)


def open_ticket(requester, subject="Cannot export invoices", body="The export spins.", **kw):
    return services.ticket_open(requester=requester, subject=subject, description=body, **kw)


def snapshot(*tickets) -> dict:
    """What must survive a merge or split, summed over the tickets."""
    ids = [t.pk for t in tickets]
    return {
        "messages": set(Message.objects.filter(ticket_id__in=ids).values_list("pk", flat=True)),
        "attachments": set(
            Attachment.objects.filter(message__ticket_id__in=ids).values_list("pk", flat=True)
        ),
        "events": {
            t.pk: list(TicketEvent.objects.filter(ticket=t).values_list("pk", flat=True))
            for t in tickets
        },
    }


def kinds(ticket) -> list[str]:
    return list(ticket.events.values_list("kind", flat=True))


@pytest.fixture
def duplicate(customer, agent):
    """A busy ticket: an attachment, a reply, an internal note, a customer's answer, a
    participant, a tag and an open escalation."""
    dup = open_ticket(
        customer,
        subject="Export still broken",
        body="Same as before: the export spins.",
        attachments=[SimpleUploadedFile("log.txt", b"trace", content_type="text/plain")],
    )
    services.message_add(ticket=dup, author=agent, body="Which browser do you use?")
    services.message_add(ticket=dup, author=agent, body="Probably HD-1 again", is_internal=True)
    services.message_add(
        ticket=dup,
        author=customer,
        body="Firefox, see screenshot.",
        attachments=[SimpleUploadedFile("shot.png", b"\x89PNG\r\n", content_type="image/png")],
    )
    TicketParticipant.objects.create(ticket=dup, email="boss@acme.example", name="Boss")
    TicketParticipant.objects.create(ticket=dup, email="both@acme.example")
    TicketTag.objects.create(ticket=dup, tag=Tag.objects.create(name="export"), added_by=agent)
    services.ticket_escalate(ticket=dup, kind="complex", reason="Needs engineering", actor=agent)
    return dup


@pytest.fixture
def survivor(customer, agent):
    first = open_ticket(customer)
    services.message_add(ticket=first, author=agent, body="Looking into it.")
    TicketParticipant.objects.create(ticket=first, email="both@acme.example")
    TicketTag.objects.create(ticket=first, tag=Tag.objects.create(name="billing"))
    return first


# ---- merge: the service ------------------------------------------------------------------


@pytest.mark.django_db
def test_merge_keeps_every_message_attachment_participant_and_event(
    duplicate, survivor, agent, run_effects
):
    before = snapshot(duplicate, survivor)
    moved = set(duplicate.messages.values_list("pk", flat=True))
    sla_before = Ticket.objects.values("status", "sla_due_at", "first_response_due_at").get(
        pk=survivor.pk
    )

    with run_effects():
        result = services.ticket_merge(ticket=duplicate, into=survivor, actor=agent)

    assert result.pk == survivor.pk
    after = snapshot(duplicate, survivor)
    # Every message is on the survivor now (plus the one notice), attachments with them.
    notice = survivor.messages.get(sender_kind="system")
    assert after["messages"] == before["messages"] | {notice.pk}
    assert set(survivor.messages.values_list("pk", flat=True)) == after["messages"]
    assert duplicate.messages.count() == 0
    assert after["attachments"] == before["attachments"]
    assert set(Message.objects.filter(moved_from=duplicate).values_list("pk", flat=True)) == moved
    # One conversation, in the order it was written.
    times = list(survivor.messages.values_list("created_at", flat=True))
    assert times == sorted(times)
    # Events only grow, on both tickets; each says what happened.
    for ticket_id, ids in before["events"].items():
        assert after["events"][ticket_id][: len(ids)] == ids
    assert kinds(duplicate)[len(before["events"][duplicate.pk]) :] == [
        "status_changed",
        "closed",
        "merged_into",
    ]
    assert kinds(survivor)[len(before["events"][survivor.pk]) :] == [
        "tags_changed",
        "merged",
        "message_added",
    ]
    merged = survivor.events.get(kind="merged")
    assert merged.metadata["duplicate"] == duplicate.reference
    assert merged.metadata["messages_moved"] == len(moved)
    assert duplicate.events.get(kind="merged_into").new_value == survivor.reference
    # The duplicate: closed, pointing to the survivor, its escalation settled.
    duplicate.refresh_from_db()
    assert (duplicate.status, duplicate.merged_into_id) == ("closed", survivor.pk)
    assert not Escalation.objects.filter(ticket=duplicate, is_resolved=False).exists()
    # The survivor: its participants de-duplicated by email, tags united, SLA unchanged.
    assert sorted(survivor.participants.values_list("email", flat=True)) == [
        "boss@acme.example",
        "both@acme.example",
    ]
    assert TicketParticipant.objects.filter(ticket=duplicate).count() == 1  # the duplicate one
    assert sorted(survivor.tags.values_list("name", flat=True)) == ["billing", "export"]
    assert (
        Ticket.objects.values("status", "sla_due_at", "first_response_due_at").get(pk=survivor.pk)
        == sla_before
    )
    # The customer is told once, on the survivor (participants copied), and no more.
    (email,) = mail.outbox
    assert email.to == ["customer-a@example.com"]
    assert sorted(email.cc) == ["boss@acme.example", "both@acme.example"]
    assert f"Your request {duplicate.reference}" in email.body
    assert survivor.reference in email.subject
    assert email.extra_headers.get("Auto-Submitted") == "auto-replied"


@pytest.mark.django_db
def test_another_customers_duplicate_brings_them_along_as_participant(
    survivor, colleague, agent, run_effects
):
    theirs = open_ticket(colleague, subject="Export broken for me too")

    with run_effects():
        services.ticket_merge(ticket=theirs, into=survivor, actor=agent)

    assert survivor.participants.filter(email=colleague.email, user=colleague).exists()
    (email,) = mail.outbox
    assert email.to == ["customer-a@example.com"]
    assert colleague.email in email.cc


@pytest.mark.django_db
def test_merge_refusals_change_nothing(customer, agent, survivor, duplicate):
    third = open_ticket(customer, subject="Third")
    services.ticket_merge(ticket=third, into=survivor, actor=agent)  # third is merged now
    other = open_ticket(customer, subject="Other")
    before = snapshot(duplicate, survivor, other)

    with pytest.raises(DomainError, match="itself") as itself:
        services.ticket_merge(ticket=duplicate, into=duplicate, actor=agent)
    with pytest.raises(Conflict, match=f"already merged into {survivor.reference}"):
        services.ticket_merge(ticket=third, into=other, actor=agent)
    with pytest.raises(DomainError, match=f"merge into {survivor.reference} instead") as chain:
        services.ticket_merge(ticket=other, into=third, actor=agent)
    with pytest.raises(NotPermitted):
        services.ticket_merge(ticket=other, into=survivor, actor=customer)
    with pytest.raises(DomainError, match="Name the ticket"):
        services.ticket_merge(ticket=other, into=None, actor=agent)

    assert itself.value.field == chain.value.field == "into"
    assert snapshot(duplicate, survivor, other) == before


@pytest.mark.django_db
def test_no_merge_while_the_ai_answers_either_ticket(customer, agent, survivor):
    busy = open_ticket(customer, subject="Busy")
    services.ticket_set_status(ticket=busy, status="analyzing")

    for ticket, into in ((busy, survivor), (survivor, busy)):
        with pytest.raises(Conflict, match="try again in a minute"):
            services.ticket_merge(ticket=ticket, into=into, actor=agent)

    busy.refresh_from_db()
    assert busy.merged_into_id is None and busy.status == "analyzing"


@pytest.mark.django_db
def test_no_merge_into_a_closed_ticket(customer, agent, survivor):
    closed = open_ticket(customer, subject="Old")
    services.ticket_close(ticket=closed, actor=agent)

    with pytest.raises(DomainError, match="reopen it first") as refused:
        services.ticket_merge(ticket=survivor, into=closed, actor=agent)
    assert refused.value.field == "into"


@pytest.mark.django_db
def test_an_already_closed_duplicate_is_merged_without_a_second_closing(
    customer, agent, survivor, run_effects
):
    old = open_ticket(customer, subject="Old")
    services.ticket_close(ticket=old, actor=agent)
    closings = old.events.filter(kind="closed").count()

    with run_effects():
        services.ticket_merge(ticket=old, into=survivor, actor=agent)

    assert old.events.filter(kind="closed").count() == closings
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_merging_a_into_b_and_b_into_a_at_once_does_not_deadlock():
    customer = CustomerFactory(username="racer")
    agent = AgentFactory(username="racer-agent")
    a = open_ticket(customer, subject="A")
    b = open_ticket(customer, subject="B")
    errors, barrier = [], threading.Barrier(2)

    def run(pair):
        try:
            barrier.wait()
            services.ticket_merge(ticket=pair[0], into=pair[1], actor=agent)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(p,)) for p in ((a, b), (b, a))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    close_old_connections()

    # One wins; the other waits for the lock, then is refused with a reason (no deadlock).
    assert len(errors) == 1 and isinstance(errors[0], DomainError), errors
    merged = Ticket.objects.filter(merged_into__isnull=False)
    assert merged.count() == 1
    assert Message.objects.count() == 3  # two descriptions and the one notice


# ---- replies to a merged ticket reach the survivor ------------------------------------


@pytest.mark.django_db
def test_a_portal_reply_to_the_duplicate_goes_to_the_survivor(
    client, customer, agent, duplicate, survivor
):
    services.ticket_merge(ticket=duplicate, into=survivor, actor=agent)
    client.force_login(customer)

    page = client.get(f"/tickets/{duplicate.reference}/").content.decode()
    assert "This request was merged into" in page
    assert f'href="/tickets/{survivor.reference}/"' in page

    response = client.post(f"/tickets/{duplicate.reference}/reply/", {"body": "Any news?"})

    assert response.status_code == 302 and response.url == f"/tickets/{survivor.reference}/"
    assert survivor.messages.filter(body="Any news?", sender_kind="customer").exists()
    duplicate.refresh_from_db()
    assert duplicate.status == "closed" and duplicate.reopened_count == 0


@pytest.mark.django_db
def test_an_api_reply_to_the_duplicate_goes_to_the_survivor(customer, agent, survivor):
    dup = open_ticket(customer, subject="Dup")
    services.ticket_merge(ticket=dup, into=survivor, actor=agent)

    response = api(customer).post(
        f"/api/tickets/{dup.reference}/messages/", {"body": "Still broken"}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert Message.objects.get(pk=response.json()["id"]).ticket_id == survivor.pk
    dup.refresh_from_db()
    assert dup.status == "closed"


@pytest.mark.django_db
def test_a_mail_to_the_duplicates_reply_address_goes_to_the_survivor(customer, agent, survivor):
    from email.message import EmailMessage

    SupportAddress.objects.create(email="support@acme.example", is_default=True)
    dup = open_ticket(customer, subject="Dup")
    services.ticket_merge(ticket=dup, into=survivor, actor=agent)
    address = reply_address(dup)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = customer.email, address, "Re: Dup"
    message["Message-ID"] = "<merge-test@client.example>"
    message.set_content("Any news?")

    inbound = services.email_receive(message.as_bytes(), door="smtp", recipients=[address])

    assert (inbound.outcome, inbound.ticket_id) == ("appended", survivor.pk)
    assert "merged into" in inbound.reason
    assert survivor.messages.filter(body__startswith="Any news?").exists()


# ---- split ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_split_moves_the_chosen_messages_to_a_new_linked_ticket(duplicate, agent, customer):
    before = snapshot(duplicate)
    chosen = list(duplicate.messages.filter(is_internal=True).values_list("pk", flat=True)) + list(
        duplicate.messages.filter(body__startswith="Firefox").values_list("pk", flat=True)
    )
    sla_fields = ("sla_due_at", "first_response_due_at", "resolution_due_at")

    new = services.ticket_split(ticket=duplicate, message_ids=chosen, actor=agent)

    after = snapshot(duplicate, new)
    assert after["messages"] == before["messages"]  # every message kept
    assert after["attachments"] == before["attachments"]
    assert set(new.messages.values_list("pk", flat=True)) == set(chosen)
    assert set(Message.objects.filter(moved_from=duplicate).values_list("pk", flat=True)) == set(
        chosen
    )
    assert new.split_from_id == duplicate.pk
    assert new.subject == f"Split from {duplicate.reference}: Export still broken"
    assert new.description == "Probably HD-1 again"  # the first moved message
    assert (new.requester, new.organization_id, new.type, new.priority, new.channel) == (
        customer,
        duplicate.organization_id,
        duplicate.type,
        duplicate.priority,
        duplicate.channel,
    )
    assert new.assignee == agent and new.status == "new"
    assert new.reference.startswith("HD-") and new.reference != duplicate.reference
    assert all(getattr(new, f) is not None for f in sla_fields)  # its own clocks
    # Events: the original's only grow; the new one was created and says where from.
    assert (
        after["events"][duplicate.pk][: len(before["events"][duplicate.pk])]
        == (before["events"][duplicate.pk])
    )
    split = duplicate.events.get(kind="split")
    assert split.metadata == {
        "new_ticket": new.reference,
        "new_ticket_id": new.pk,
        "message_ids": sorted(chosen),
    }
    assert kinds(new) == ["created", "split_from", "assigned"]
    # Not sent to the AI: people already handle this conversation.
    analyses = OutboxItem.objects.filter(task="support.tasks.analyze_ticket")
    assert not [item for item in analyses if item.args == [new.pk]]


@pytest.mark.django_db
def test_split_with_a_subject(duplicate, agent):
    last = duplicate.messages.order_by("-created_at").first()

    new = services.ticket_split(
        ticket=duplicate, message_ids=[last.pk], actor=agent, subject="  Firefox export  "
    )

    assert new.subject == "Firefox export"


@pytest.mark.django_db
def test_split_refusals(duplicate, survivor, agent, customer):
    customer_messages = list(
        duplicate.messages.filter(sender_kind="customer").values_list("pk", flat=True)
    )
    foreign = survivor.messages.first().pk
    before = snapshot(duplicate, survivor)

    cases = [
        ([], "at least one message"),
        ([foreign], f"Not messages of {duplicate.reference}: {foreign}"),
        (customer_messages, "Leave at least one of the customer's messages"),
        (["x"], "Choose messages"),
    ]
    for ids, message in cases:
        with pytest.raises(DomainError, match=message) as refused:
            services.ticket_split(ticket=duplicate, message_ids=ids, actor=agent)
        assert refused.value.field == "messages"
    with pytest.raises(NotPermitted):
        services.ticket_split(ticket=duplicate, message_ids=customer_messages[:1], actor=customer)

    assert snapshot(duplicate, survivor) == before
    assert Ticket.objects.count() == 2


# ---- API -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_merge_and_split(duplicate, survivor, agent):
    response = api(agent).post(
        f"/api/tickets/{duplicate.reference}/merge/",
        {"into": survivor.reference.lower()},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["reference"] == survivor.reference
    detail = api(agent).get(f"/api/tickets/{duplicate.reference}/").json()
    assert (detail["merged_into"], detail["status"]) == (survivor.reference, "closed")

    moved = survivor.messages.filter(body__startswith="Firefox").values_list("pk", flat=True)
    response = api(agent).post(
        f"/api/tickets/{survivor.reference}/split/",
        {"messages": list(moved), "subject": "Firefox"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["subject"], body["split_from"], body["merged_into"]) == (
        "Firefox",
        survivor.reference,
        None,
    )


@pytest.mark.django_db
def test_api_bad_input_answers_400_on_the_field(duplicate, survivor, agent):
    client = api(agent)
    merge_url = f"/api/tickets/{duplicate.reference}/merge/"
    split_url = f"/api/tickets/{duplicate.reference}/split/"

    cases = [
        (merge_url, {}, "into"),
        (merge_url, {"into": "HD-00000000-0000"}, "into"),
        (merge_url, {"into": duplicate.reference}, "into"),
        (split_url, {}, "messages"),
        (split_url, {"messages": []}, "messages"),
        (split_url, {"messages": [survivor.messages.first().pk]}, "messages"),
        (split_url, {"messages": "1"}, "messages"),
    ]
    for url, data, field in cases:
        response = client.post(url, data, format="json")
        assert response.status_code == 400, (data, response.json())
        assert field in response.json(), response.json()

    duplicate.refresh_from_db()
    assert duplicate.merged_into_id is None and Ticket.objects.count() == 2


@pytest.mark.django_db
def test_api_merge_of_a_merged_ticket_is_a_conflict(duplicate, survivor, agent, customer):
    services.ticket_merge(ticket=duplicate, into=survivor, actor=agent)
    third = open_ticket(customer, subject="Third")

    response = api(agent).post(
        f"/api/tickets/{duplicate.reference}/merge/", {"into": third.reference}, format="json"
    )

    assert response.status_code == 409
    assert "already merged" in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["merge", "split"])
def test_customers_cannot_merge_or_split(duplicate, survivor, customer, action):
    data = {"into": survivor.reference} if action == "merge" else {"messages": [1]}

    response = api(customer).post(
        f"/api/tickets/{duplicate.reference}/{action}/", data, format="json"
    )
    anonymous = APIClient().post(f"/api/tickets/{duplicate.reference}/{action}/", data)

    assert response.status_code == 403
    assert anonymous.status_code in (401, 403)
    duplicate.refresh_from_db()
    assert duplicate.merged_into_id is None


@pytest.mark.django_db
def test_customers_see_the_merge_link_of_their_own_tickets(duplicate, survivor, agent, customer):
    services.ticket_merge(ticket=duplicate, into=survivor, actor=agent)

    detail = api(customer).get(f"/api/tickets/{duplicate.reference}/").json()

    assert detail["merged_into"] == survivor.reference


@pytest.mark.django_db
@pytest.mark.parametrize("count", [2, 8])
def test_ticket_list_reads_the_links_without_a_query_per_ticket(
    agent, customer, count, django_assert_max_num_queries
):
    survivor = open_ticket(customer, subject="Survivor")
    for i in range(count):
        dup = open_ticket(customer, subject=f"Dup {i}")
        services.ticket_merge(ticket=dup, into=survivor, actor=agent)
        split_off = services.ticket_split(
            ticket=survivor, message_ids=[_last(survivor)], actor=agent
        )
        assert split_off.split_from_id == survivor.pk

    with django_assert_max_num_queries(8):
        response = api(agent).get("/api/tickets/?page_size=100")

    rows = response.json()["results"]
    assert sum(1 for row in rows if row["merged_into"] == survivor.reference) == count
    assert sum(1 for row in rows if row["split_from"] == survivor.reference) == count


def _last(ticket) -> int:
    return ticket.messages.order_by("-created_at", "-id").values_list("pk", flat=True).first()


# ---- admin ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_merge_button_and_banners(client, agent, duplicate, survivor):
    client.force_login(agent)
    page = client.get(reverse("admin:support_ticket_change", args=[duplicate.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Merge this ticket into" in html and "js/merge.js" in html
    assert "Split off messages into a new ticket" in html

    response = act(client, duplicate, "merge", {"into": f" {survivor.reference.lower()} "})

    assert response.status_code == 302
    html = client.get(response.url).content.decode()
    assert f"{duplicate.reference} was merged into" in html
    assert f'data-merged-into="{survivor.reference}"' in html
    assert "Merge this ticket into" not in html  # a merged ticket offers neither again
    assert 'value="Reopen"' not in html  # nor reopening: it lives on in the survivor
    assert f"merged into {survivor.reference}" in html  # the event log says where
    survivor_page = client.get(reverse("admin:support_ticket_change", args=[survivor.pk]))
    assert "Merged in:" in survivor_page.content.decode()
    assert duplicate.reference in survivor_page.content.decode()


@pytest.mark.django_db
def test_admin_merge_errors_are_shown(client, agent, duplicate):
    client.force_login(agent)

    for into, message in (("", "Name the ticket"), ("HD-19990101-0001", "There is no ticket")):
        response = act(client, duplicate, "merge", {"into": into})
        html = client.get(response.url).content.decode()
        assert message in html

    duplicate.refresh_from_db()
    assert duplicate.merged_into_id is None


@pytest.mark.django_db
def test_admin_split_button_says_the_new_reference(client, agent, duplicate):
    client.force_login(agent)
    last = _last(duplicate)

    response = act(client, duplicate, "split", {"messages": [last], "subject": ""})

    new = Ticket.objects.get(split_from=duplicate)
    html = client.get(response.url).content.decode()
    assert "Split off into" in html
    assert reverse("admin:support_ticket_change", args=[new.pk]) in html
    assert new.reference in html
    new_page = client.get(reverse("admin:support_ticket_change", args=[new.pk])).content.decode()
    assert "Split from" in new_page and duplicate.reference in new_page


@pytest.mark.django_db
def test_admin_split_without_a_choice_is_an_error(client, agent, duplicate):
    client.force_login(agent)

    response = act(client, duplicate, "split", {"subject": "x"})

    assert "Choose at least one message" in client.get(response.url).content.decode()
    assert not Ticket.objects.filter(split_from=duplicate).exists()


@pytest.mark.django_db
def test_a_merged_ticket_is_not_reopened(duplicate, survivor, agent, client):
    services.ticket_merge(ticket=duplicate, into=survivor, actor=agent)

    with pytest.raises(Conflict, match="merged into another one"):
        services.ticket_reopen(ticket=duplicate, actor=agent)
    client.force_login(agent)
    response = act(client, duplicate, "reopen", {})

    assert "merged into another one" in client.get(response.url).content.decode()
    duplicate.refresh_from_db()
    assert duplicate.status == "closed"


@pytest.mark.django_db
def test_the_banner_links_the_survivor_only_for_who_may_see_it(
    client, survivor, other_customer, agent
):
    theirs = open_ticket(other_customer, subject="Same problem here")
    services.ticket_merge(ticket=theirs, into=survivor, actor=agent)
    client.force_login(other_customer)

    page = client.get(f"/tickets/{theirs.reference}/").content.decode()

    assert f"This request was merged into {survivor.reference}" in page
    assert f'href="/tickets/{survivor.reference}/"' not in page
    assert client.get(f"/tickets/{survivor.reference}/").status_code == 404


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_merge_button_asks_first_in_a_real_browser(browser, live_server, customer, agent):
    from tests.conftest import ARTIFACTS, browser_login

    survivor = open_ticket(customer, subject="Survivor")
    dup = open_ticket(customer, subject="Duplicate")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors, questions = [], []
    page.on("pageerror", lambda error: errors.append(str(error)))
    browser_login(page, live_server, agent.username)
    page.goto(f"{live_server.url}/admin/support/ticket/{dup.pk}/change/")

    # Dismissed: nothing happens.
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.fill("#hd-merge-into", survivor.reference.lower())
    page.click("[data-merge-form] [type=submit]")
    page.wait_for_timeout(300)
    dup.refresh_from_db()
    assert dup.merged_into_id is None
    assert questions and f"Merge {dup.reference} into {survivor.reference}?" in questions[0]

    # Accepted: merged, and the page says where the conversation went.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("[data-merge-form] [type=submit]")
    page.wait_for_selector(f'[data-merged-into="{survivor.reference}"]')
    page.screenshot(path=ARTIFACTS / "merge-panel.png", full_page=True)
    dup.refresh_from_db()
    assert dup.merged_into_id == survivor.pk
    assert not errors
    page.close()
