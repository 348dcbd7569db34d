"""Mail that reaches the desk (``services.email_receive``, the one entry of every door):
new tickets, threading, people, safety, limits, and the admin's spam queue and retries."""

from __future__ import annotations

import threading
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail as outbox
from django.db import connection
from django.urls import reverse

from core.errors import Conflict
from core.models import OutboxItem
from support import services
from support.email.addresses import reply_address
from support.models import (
    InboundEmail,
    Message,
    OrganizationDomain,
    SupportAddress,
    Ticket,
    TicketParticipant,
)
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

SUPPORT = "support@acme.example"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def mail(
    *,
    sender: str = "Dana Reyes <dana@client.example>",
    to: str = SUPPORT,
    cc: str | None = None,
    subject: str = "The printer is on fire",
    body: str = "It started this morning.\n",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    headers: dict[str, str] | None = None,
    attachments: tuple[tuple[str, str, bytes], ...] = (),
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    message["Date"] = formatdate()
    message["Message-ID"] = message_id or make_msgid(domain="client.example")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    for filename, content_type, content in attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def receive(raw: bytes, recipients: list[str] | None = None) -> InboundEmail:
    return services.email_receive(raw, door="smtp", recipients=recipients or [SUPPORT])


@pytest.fixture(autouse=True)
def support_address(db):
    return SupportAddress.objects.create(email=SUPPORT, name="Acme Support", is_default=True)


@pytest.fixture
def client_org(org_a):
    OrganizationDomain.objects.create(organization=org_a, domain="client.example", is_verified=True)
    return org_a


# ---- new tickets and new people -----------------------------------------------------


def test_an_unknown_sender_opens_a_ticket_as_a_new_customer_of_their_verified_domain(
    client_org,
):
    inbound = receive(mail(attachments=(("photo.png", "image/png", PNG),)))

    assert (inbound.outcome, inbound.reason, inbound.door) == ("created", "", "smtp")
    ticket = inbound.ticket
    assert (ticket.subject, ticket.channel, ticket.status) == (
        "The printer is on fire",
        "email",
        "new",
    )
    assert ticket.description == "It started this morning."
    user = ticket.requester
    assert (user.email, user.first_name, user.last_name) == ("dana@client.example", "Dana", "Reyes")
    assert user.username == "dana"
    assert not user.has_usable_password()
    assert user.customer_profile.organization == client_org
    assert ticket.organization == client_org
    address = EmailAddress.objects.get(user=user)
    assert (address.email, address.verified, address.primary) == (
        "dana@client.example",
        False,
        True,
    )
    message = ticket.messages.get()
    assert message == inbound.message
    assert message.email_message_id == inbound.email_message_id
    assert inbound.email_message_id.startswith("<") and inbound.email_message_id.endswith(">")
    assert [a.filename for a in message.attachments.all()] == ["photo.png"]
    assert list(ticket.events.values_list("kind", flat=True)) == ["created"]
    # The AI looks at it like at any other new ticket.
    assert OutboxItem.objects.filter(task="support.tasks.analyze_ticket", args=[ticket.pk]).exists()
    # The original is kept.
    assert inbound.raw.open("rb").read().startswith(b"From: Dana Reyes")


def test_an_unverified_domain_places_nobody(org_a):
    OrganizationDomain.objects.create(organization=org_a, domain="client.example")

    inbound = receive(mail())

    assert inbound.ticket.requester.customer_profile.organization is None
    assert inbound.ticket.organization is None


def test_a_new_customer_claims_the_account_through_forgot_password(client):
    inbound = receive(mail())

    response = client.post(reverse("account_reset_password"), {"email": "dana@client.example"})

    assert response.status_code == 302
    assert [m.to for m in outbox.outbox] == [["dana@client.example"]]
    assert "/password/reset/key/" in outbox.outbox[0].body
    assert inbound.ticket.requester.username in outbox.outbox[0].body


def test_a_known_sender_is_that_customer_whatever_the_case(customer):
    inbound = receive(mail(sender="Casey <Customer-A@Example.com>"))

    assert inbound.ticket.requester == customer
    assert get_user_model().objects.count() == 1


def test_the_username_of_a_new_customer_never_collides(db):
    CustomerFactory(username="dana")

    inbound = receive(mail())

    assert inbound.ticket.requester.username == "dana2"


def test_an_empty_subject_and_body_still_open_a_ticket(db):
    inbound = receive(mail(subject="", body=""))

    assert inbound.ticket.subject == "(no subject)"
    assert inbound.ticket.description == "(The email had no text.)"


# ---- threading ----------------------------------------------------------------------

REPLY = "Still burning, see attached.\n\nOn Mon, Dana wrote:\n> It started this morning.\n"


def test_a_reply_is_matched_by_in_reply_to_and_keeps_only_its_new_part(db):
    first = receive(mail())

    second = receive(
        mail(subject="Re: something else", body=REPLY, in_reply_to=first.email_message_id)
    )

    assert (second.outcome, second.ticket) == ("appended", first.ticket)
    assert "In-Reply-To" in second.reason
    assert second.message.body == "Still burning, see attached."
    assert second.message.sender_kind == "customer"
    assert first.ticket.messages.count() == 2


def test_a_reply_to_our_mail_is_matched_by_its_message_id(ticket, agent, customer):
    ours = services.message_add(ticket=ticket, author=agent, body="Try turning it off")
    Message.objects.filter(pk=ours.pk).update(email_message_id="<ours.1@acme.example>")

    inbound = receive(
        mail(
            sender=customer.email,
            subject="Re: hi",
            body="Done",
            in_reply_to="<ours.1@acme.example>",
        )
    )

    assert inbound.ticket == ticket
    ticket.refresh_from_db()
    assert ticket.status == "new"  # the customer answered: back to the queue


def test_a_reply_is_matched_by_the_signed_plus_address(ticket, customer):
    address = reply_address(ticket)

    inbound = receive(mail(sender=customer.email, to=address, subject="Hello"), [address])

    assert (inbound.outcome, inbound.ticket, inbound.reason) == (
        "appended",
        ticket,
        "matched by reply address",
    )


def test_a_forged_token_opens_a_new_ticket(ticket, customer):
    forged = f"support+{ticket.reference.lower()}.aaaaaaaa@acme.example"

    inbound = receive(mail(sender=customer.email, to=forged, subject="Hello"), [forged])

    assert inbound.outcome == "created"
    assert inbound.ticket != ticket


def test_the_subject_reference_counts_from_the_requester_and_their_colleagues(
    ticket, customer, colleague
):
    subject = f"Re: [{ticket.reference}] Cannot export invoices"

    mine = receive(mail(sender=customer.email, subject=subject))
    theirs = receive(mail(sender=colleague.email, subject=subject))

    assert (mine.outcome, mine.ticket) == ("appended", ticket)
    assert (theirs.outcome, theirs.ticket) == ("appended", ticket)
    assert list(ticket.participants.values_list("email", flat=True)) == [colleague.email]


def test_a_stranger_using_the_reference_opens_a_ticket_of_their_own(ticket, other_customer):
    inbound = receive(mail(sender=other_customer.email, subject=f"About {ticket.reference}"))

    assert inbound.outcome == "created"
    assert inbound.ticket.requester == other_customer
    assert ticket.messages.count() == 1


def test_the_same_message_id_twice_makes_one_message(db):
    raw = mail(message_id="<once@client.example>")

    first = receive(raw)
    again = services.email_receive(raw, door="imap")

    assert again.pk == first.pk
    assert InboundEmail.objects.count() == 1
    assert Message.objects.count() == 1
    assert first.email_message_id == "<once@client.example>"


def test_a_reply_to_a_resolved_ticket_reopens_it(ticket, customer, agent):
    services.ticket_resolve(ticket=ticket, actor=agent)

    inbound = receive(mail(sender=customer.email, subject=f"Re: {ticket.reference}"))

    ticket.refresh_from_db()
    assert inbound.outcome == "appended"
    assert ticket.status == "new"
    assert ticket.reopened_count == 1
    assert "reopened" in ticket.events.values_list("kind", flat=True)


def test_a_reply_to_a_closed_ticket_opens_a_follow_up(ticket, customer, agent):
    services.ticket_close(ticket=ticket, actor=agent)
    subject = f"Re: {ticket.subject} [{ticket.reference}]"

    inbound = receive(mail(sender=customer.email, subject=subject, body=REPLY))
    later = receive(mail(sender=customer.email, subject=subject, body="And again"))

    follow_up = inbound.ticket
    assert inbound.outcome == "follow_up"
    assert (follow_up.follow_up_of, follow_up.subject, follow_up.channel) == (
        ticket,
        subject,
        "email",
    )
    assert follow_up.description == "Still burning, see attached."
    assert follow_up.events.filter(field="follow_up_of", new_value=ticket.reference).exists()
    # A second reply to the closed ticket joins the open follow-up.
    assert (later.outcome, later.ticket) == ("appended", follow_up)
    ticket.refresh_from_db()
    assert ticket.status == "closed"
    assert ticket.messages.count() == 1


# ---- staff --------------------------------------------------------------------------


def test_an_agents_mail_on_a_ticket_is_an_agent_reply(ticket, agent):
    address = reply_address(ticket)

    inbound = receive(mail(sender=agent.email, to=address, body="On it."), [address])

    assert inbound.outcome == "appended"
    assert (inbound.message.sender_kind, inbound.message.author) == ("agent", agent)
    ticket.refresh_from_db()
    assert ticket.status == "awaiting_customer"


def test_staff_do_not_open_tickets_by_mail(agent):
    inbound = receive(mail(sender=agent.email))

    assert inbound.outcome == "refused"
    assert "Staff" in inbound.reason
    assert not Ticket.objects.exists()


# ---- safety -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"X-Autoreply": "yes"},
        {"Precedence": "bulk"},
    ],
)
def test_automatic_mail_is_ignored(headers):
    inbound = receive(mail(subject="Out of office", headers=headers))

    assert inbound.outcome == "ignored"
    assert inbound.ticket is None
    assert not Ticket.objects.exists()
    assert not get_user_model().objects.exists()  # nobody is created for a machine


def test_a_bounce_is_ignored(db):
    inbound = receive(
        mail(
            sender="Mail Delivery System <MAILER-DAEMON@mx.client.example>",
            subject="Undelivered Mail Returned to Sender",
            headers={"Return-Path": "<>"},
        )
    )

    assert inbound.outcome == "ignored"
    assert not Ticket.objects.exists()


def test_mail_from_our_own_address_is_a_loop(db):
    inbound = receive(mail(sender=f"Acme Support <{SUPPORT}>"))

    assert inbound.outcome == "ignored"
    assert "loop" in inbound.reason


def test_spam_waits_in_the_queue_until_an_agent_says_it_is_not(client, agent):
    inbound = receive(mail(headers={"X-Spam-Flag": "YES", "X-Spam-Score": "9.1"}))
    assert (inbound.outcome, inbound.ticket) == ("spam", None)
    assert not Ticket.objects.exists()
    client.force_login(agent)
    assert (
        inbound.subject in client.get("/admin/support/inboundemail/?outcome=spam").content.decode()
    )

    response = client.post(
        "/admin/support/inboundemail/",
        {"action": "not_spam_action", "_selected_action": [inbound.pk]},
    )

    assert response.status_code == 302
    inbound.refresh_from_db()
    assert inbound.outcome == "created"
    assert "marked not spam by agent-a" in inbound.reason
    assert inbound.ticket.subject == "The printer is on fire"


# ---- participants and attachments ---------------------------------------------------


def test_copied_addresses_become_participants(customer, colleague):
    inbound = receive(
        mail(
            sender=customer.email,
            to=f"{SUPPORT}, Lee <lee@client.example>",
            cc=f"{colleague.email}, support+x@acme.example, {customer.email}",
        )
    )

    participants = TicketParticipant.objects.filter(ticket=inbound.ticket)
    assert sorted(participants.values_list("email", flat=True)) == [
        colleague.email,
        "lee@client.example",
    ]
    assert participants.get(email=colleague.email).user == colleague


def test_attachments_over_the_limits_are_left_out_with_a_note(settings):
    settings.HELPDESK_ATTACHMENT_MAX_BYTES = 1000
    settings.HELPDESK_ATTACHMENT_MAX_FILES = 2

    inbound = receive(
        mail(
            attachments=(
                ("a.png", "image/png", PNG),
                ("tool.exe", "application/octet-stream", b"MZ"),
                ("huge.pdf", "application/pdf", b"%PDF" + b"x" * 2000),
                ("b.txt", "text/plain", b"log"),
                ("c.txt", "text/plain", b"more"),
            )
        )
    )

    assert inbound.outcome == "created"
    message = inbound.message
    assert sorted(a.filename for a in message.attachments.all()) == ["a.png", "b.txt"]
    assert "[Attachments not kept:" in message.body
    assert "tool.exe (files of type" in message.body
    assert "huge.pdf (2 KB; the limit is 1000 bytes)" in message.body
    assert "c.txt (at most 2 files per message)" in message.body


# ---- limits -------------------------------------------------------------------------


def test_the_ticket_budget_refuses_new_tickets(settings):
    settings.HELPDESK_TICKETS_PER_HOUR_PER_USER = 1

    first = receive(mail(subject="One"))
    second = receive(mail(subject="Two"))

    assert first.outcome == "created"
    assert second.outcome == "refused"
    assert "Too many new tickets" in second.reason
    assert Ticket.objects.count() == 1


def test_a_sender_writing_too_often_is_refused(settings, customer):
    settings.HELPDESK_EMAIL_PER_SENDER_PER_HOUR = 2

    results = [receive(mail(sender=customer.email, subject=f"#{i}")).outcome for i in range(3)]

    assert results == ["created", "created", "refused"]
    assert "loop protection" in InboundEmail.objects.get(subject="#2").reason


def test_mail_over_the_size_limit_is_refused_and_only_its_headers_kept(settings):
    settings.HELPDESK_EMAIL_MAX_BYTES = 2000

    inbound = receive(mail(body="x" * 5000))

    assert inbound.outcome == "refused"
    assert inbound.reason.startswith("Too large")
    assert inbound.from_address == "dana@client.example"
    assert b"x" * 100 not in inbound.raw.open("rb").read()
    assert not Ticket.objects.exists()


# ---- never lose a mail --------------------------------------------------------------


def test_a_failure_keeps_the_mail_and_process_again_retries_it(client, agent, monkeypatch):
    from support.services import email as email_service

    real = email_service._open_ticket

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(email_service, "_open_ticket", broken)
    inbound = receive(mail())
    assert inbound.outcome == "received"
    assert "disk on fire" in inbound.reason
    assert not Ticket.objects.exists()
    monkeypatch.setattr(email_service, "_open_ticket", real)
    client.force_login(agent)

    client.post(
        "/admin/support/inboundemail/",
        {"action": "process_again_action", "_selected_action": [inbound.pk]},
    )

    inbound.refresh_from_db()
    assert inbound.outcome == "created"
    assert Ticket.objects.count() == 1


def test_a_decided_mail_is_not_processed_again(agent):
    inbound = receive(mail())

    with pytest.raises(Conflict):
        services.inbound_email_process(inbound=inbound, actor=agent)


# ---- the original mail --------------------------------------------------------------


def test_agents_download_the_original_and_customers_cannot(client, agent, customer):
    raw = mail()
    inbound = receive(raw)
    url = reverse("admin:support_inboundemail_raw", args=[inbound.pk])

    client.force_login(customer)
    refused = client.get(url)
    client.force_login(agent)
    response = client.get(url)

    assert refused.status_code == 302 and "/login" in refused["Location"]
    assert response.status_code == 200
    assert response["Content-Type"] == "message/rfc822"
    assert b"".join(response.streaming_content) == raw


# ---- the corpus of real-world mail --------------------------------------------------

CORPUS = Path(__file__).parent / "corpus"
THREAD_ID = "<179618037716.27354.2997801213136431089@help.example.com>"
EXPECTED = {
    "apple_mail_reply": "appended",
    "gmail_reply": "appended",
    "html_only": "appended",
    "iphone_reply": "appended",
    "outlook_original_message": "appended",
    "outlook_reply": "appended",
    "shift_jis": "appended",
    "thunderbird_reply": "appended",
    "thunderbird_wrote": "appended",
    "attachments": "created",
    "forwarded": "created",
    "iso_2022_jp": "created",
    "iso_8859_1": "created",
    "no_message_id": "created",
    "nul_byte": "created",
    "rfc2047_rfc2231": "created",
    "utf8_undeclared": "created",
    "bounce_dsn": "ignored",
    "loop": "ignored",
    "mailing_list": "ignored",
    "out_of_office": "ignored",
    "spam_flagged": "spam",
}


def test_the_corpus_lists_every_file():
    assert {path.stem for path in CORPUS.glob("*.eml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_corpus_mail_becomes_what_it_is(name, ticket, agent, settings):
    settings.HELPDESK_EMAIL_LOOP_TOKEN = "hd-loop-7f3a9c"
    ours = services.message_add(ticket=ticket, author=agent, body="Please try again now.")
    Message.objects.filter(pk=ours.pk).update(email_message_id=THREAD_ID)
    raw = (CORPUS / f"{name}.eml").read_bytes()

    inbound = receive(raw)
    again = receive(raw)

    assert inbound.outcome == EXPECTED[name], inbound.reason
    assert again.pk == inbound.pk  # the same mail twice is recorded once
    if inbound.outcome == "appended":
        assert inbound.ticket == ticket
        body = inbound.message.body
        assert body and "\n>" not in body and not body.startswith(">")
        assert "Please try again now." not in body  # our quoted answer is left out
    elif inbound.outcome == "created":
        assert inbound.ticket.channel == "email"
        assert "\x00" not in inbound.ticket.description
    else:
        assert inbound.ticket is None
    assert ticket.messages.count() == 2 + (inbound.outcome == "appended")


DOORS = ["smtp", "imap", "webhook", "smtp"]


@pytest.mark.django_db(transaction=True)
def test_the_same_mail_through_several_doors_at_once_is_one_message():
    raw = mail(message_id="<race@client.example>")
    start = threading.Barrier(4)
    received: list[int] = []

    def deliver(door: str) -> None:
        try:
            start.wait(timeout=10)
            received.append(services.email_receive(raw, door=door, recipients=[SUPPORT]).pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(door,)) for door in DOORS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(received) == 4 and len(set(received)) == 1
    assert InboundEmail.objects.get().outcome == "created"
    assert (Ticket.objects.count(), Message.objects.count()) == (1, 1)


# ---- setup in admin -----------------------------------------------------------------


def test_managers_set_up_addresses_and_domains_through_the_services(client, agent, manager, org_a):
    client.force_login(agent)
    assert client.get("/admin/support/supportaddress/add/").status_code == 403
    assert client.get("/admin/support/supportaddress/").status_code == 200
    client.force_login(manager)

    address = client.post(
        "/admin/support/supportaddress/add/",
        {"email": "Billing@Acme.Example", "name": "Billing", "is_active": "on"},
    )
    domain = client.post(
        "/admin/support/organizationdomain/add/",
        {"domain": "@Client.Example", "organization": org_a.pk, "is_verified": "on"},
    )

    assert (address.status_code, domain.status_code) == (302, 302)
    assert SupportAddress.objects.filter(email="billing@acme.example", is_default=False).exists()
    assert OrganizationDomain.objects.get().domain == "client.example"


def test_the_inbound_list_shows_the_outcome_and_links_the_original(client, agent):
    inbound = receive(mail())
    client.force_login(agent)

    page = client.get(f"/admin/support/inboundemail/{inbound.pk}/change/").content.decode()

    assert reverse("admin:support_inboundemail_raw", args=[inbound.pk]) in page
    assert inbound.ticket.reference in page


def test_an_escalated_email_ticket_goes_to_the_team_of_the_address_it_was_written_to():
    from tests.factories import TeamFactory

    billing = TeamFactory(name="Billing desk", handles=[])
    security = TeamFactory(name="Security desk", handles=["security"])
    SupportAddress.objects.create(email="billing@acme.example", team=billing)
    by_mail = receive(mail(to="billing@acme.example"), ["billing@acme.example"]).ticket
    to_support = receive(mail(subject="Another question")).ticket

    escalation = services.ticket_escalate(ticket=by_mail, kind="complex", reason="Needs a person")
    assert escalation.team == billing
    # An explicit topic still wins (a security report written to billing@ goes to Security).
    other = receive(mail(to="billing@acme.example", subject="Leak"), ["billing@acme.example"])
    escalation = services.ticket_escalate(
        ticket=other.ticket, kind="policy", reason="Security", topic="security"
    )
    assert escalation.team == security
    # The general address has no team: routing by type as before.
    escalation = services.ticket_escalate(
        ticket=to_support, kind="complex", reason="Needs a person"
    )
    assert escalation.team != billing
