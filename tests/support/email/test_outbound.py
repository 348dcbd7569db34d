"""Our mail about a ticket: threaded so a reply finds its ticket, formatted as mail on
email tickets, copied to the participants, marked against loops."""

from email.utils import parseaddr

import pytest
from django.core import mail

from support import services
from support.email.addresses import reference_from_address
from support.email.outbound import LOOP_HEADER, loop_token
from support.models import InboundEmail, Message, SupportAddress, TicketChannel, TicketParticipant
from tests.factories import AgentFactory

CUSTOMER_MSGID = "<CAF=abc123@mail.gmail.com>"


@pytest.fixture
def addresses(db):
    default = SupportAddress.objects.create(
        email="help@corp.test", name="Corp Help", is_default=True
    )
    billing = SupportAddress.objects.create(email="billing@corp.test", name="Corp Billing")
    return default, billing


@pytest.fixture
def email_ticket(customer, addresses):
    """A ticket opened by the customer's mail to billing@, with a colleague in Cc."""
    ticket = services.ticket_open(
        requester=customer,
        subject="Invoice 4411 is wrong",
        description="The VAT line is missing.\nCan you fix it?",
        channel=TicketChannel.EMAIL,
    )
    # What the inbound door records (test setup writes the rows it would).
    first = ticket.messages.get()
    Message.objects.filter(pk=first.pk).update(email_message_id=CUSTOMER_MSGID)
    InboundEmail.objects.create(
        email_message_id=CUSTOMER_MSGID,
        door=InboundEmail.Door.SMTP,
        outcome=InboundEmail.Outcome.CREATED,
        from_address=customer.email,
        recipients=["Corp Billing <billing@corp.test>", "dana@partner.test"],
        subject="Invoice 4411 is wrong",
        raw="email/test.eml",
        size=100,
        ticket=ticket,
        message=first,
    )
    TicketParticipant.objects.create(ticket=ticket, email="dana@partner.test", name="Dana")
    # The support address itself, copied: never mailed (a loop).
    TicketParticipant.objects.create(ticket=ticket, email="billing@corp.test")
    return ticket


def _headers(email) -> dict:
    return {k.lower(): v for k, v in email.message().items()}


@pytest.mark.django_db
def test_an_agent_reply_on_an_email_ticket_is_threaded_mail(email_ticket, run_effects):
    agent = AgentFactory(username="sam", first_name="Sam", last_name="Reyes")

    with run_effects():
        message = services.message_add(
            ticket=email_ticket, author=agent, body="Fixed: the new invoice is attached."
        )

    (email,) = mail.outbox
    headers = _headers(email)
    message.refresh_from_db()
    # Message-ID made on the support address's domain and kept on the message.
    assert headers["message-id"] == message.email_message_id
    assert message.email_message_id.endswith("@corp.test>")
    assert (message.delivery_status, message.delivery_events[0]["event"]) == ("sent", "sent")
    # Threaded on the customer's mail.
    assert headers["in-reply-to"] == CUSTOMER_MSGID
    assert headers["references"] == CUSTOMER_MSGID
    # A reply to it names the ticket; it comes from the address the customer wrote to.
    assert reference_from_address(headers["reply-to"]) == email_ticket.reference
    assert parseaddr(headers["reply-to"])[1].startswith("billing+")
    assert parseaddr(headers["from"]) == ("Corp Billing", "billing@corp.test")
    # The requester, the participant copied, never our own address.
    assert email.to == ["customer-a@example.com"]
    assert email.cc == ["dana@partner.test"]
    assert headers[LOOP_HEADER.lower()] == loop_token()
    assert "auto-submitted" not in headers  # an agent's personal reply
    assert email.subject == f"Re: Invoice 4411 is wrong [{email_ticket.reference}]"
    # Formatted as mail: greeting, the reply, sign-off, the customer's message quoted.
    assert email.body.startswith("Hi Casey,\n\nFixed: the new invoice is attached.")
    assert "\nSam Reyes\n" in email.body
    assert "Casey wrote:\n> The VAT line is missing.\n> Can you fix it?" in email.body
    assert f"/tickets/{email_ticket.reference}/" in email.body
    html = email.alternatives[0][0]
    assert "<blockquote" in html and "The VAT line is missing." in html


@pytest.mark.django_db
def test_the_chain_grows_and_answers_the_customers_last_mail(
    email_ticket, customer, agent, run_effects
):
    with run_effects():
        first = services.message_add(ticket=email_ticket, author=agent, body="Which invoice?")
    first.refresh_from_db()
    reply = services.message_add(ticket=email_ticket, author=customer, body="4411, as I said.")
    Message.objects.filter(pk=reply.pk).update(email_message_id="<r2@mail.gmail.com>")
    mail.outbox.clear()

    with run_effects():
        services.message_add(ticket=email_ticket, author=agent, body="Thanks, fixed.")

    (email,) = mail.outbox
    headers = _headers(email)
    assert headers["in-reply-to"] == "<r2@mail.gmail.com>"
    assert headers["references"].split() == [
        CUSTOMER_MSGID,
        first.email_message_id,
        "<r2@mail.gmail.com>",
    ]
    assert "> 4411, as I said." in email.body
    assert "The VAT line" not in email.body  # only the last customer message is quoted


@pytest.mark.django_db
def test_references_are_capped_keeping_the_first(email_ticket, customer, agent, run_effects):
    for n in range(30):
        message = services.message_add(ticket=email_ticket, author=customer, body=f"ping {n}")
        Message.objects.filter(pk=message.pk).update(email_message_id=f"<p{n}@x.test>")
    with run_effects():
        services.message_add(ticket=email_ticket, author=agent, body="Pong.")

    chain = _headers(mail.outbox[-1])["references"].split()
    assert len(chain) == 20
    assert chain[0] == CUSTOMER_MSGID and chain[-1] == "<p29@x.test>"


@pytest.mark.django_db
def test_the_ai_reply_is_mailed_as_automatic_and_signed_by_the_team(email_ticket, run_effects):
    with run_effects():
        services.message_add(
            ticket=email_ticket, author=None, body="Here is how to fix it.", sender_kind="ai"
        )

    (email,) = mail.outbox
    headers = _headers(email)
    assert headers["auto-submitted"] == "auto-replied"
    assert email.cc == ["dana@partner.test"]
    assert "The Corp Billing team\n(This reply was written by our AI assistant." in email.body


@pytest.mark.django_db
def test_the_resolution_notice_is_threaded_copied_and_automatic(email_ticket, agent, run_effects):
    with run_effects():
        services.ticket_resolve(ticket=email_ticket, actor=agent)

    (email,) = mail.outbox
    headers = _headers(email)
    assert email.cc == ["dana@partner.test"]
    assert headers["auto-submitted"] == "auto-replied"
    assert headers["in-reply-to"] == CUSTOMER_MSGID
    assert headers["message-id"].endswith("@corp.test>")
    assert email.subject == f"Re: Invoice 4411 is wrong [{email_ticket.reference}]"
    assert email.body.startswith("Hi Casey,")
    assert f"/tickets/{email_ticket.reference}/#rate" in email.body


@pytest.mark.django_db
def test_internal_notes_send_nothing(email_ticket, agent, run_effects):
    with run_effects():
        services.message_add(ticket=email_ticket, author=agent, body="VIP", is_internal=True)

    assert mail.outbox == []


@pytest.mark.django_db
def test_a_web_ticket_keeps_its_subject_and_is_threaded_too(ticket, agent, run_effects):
    with run_effects():
        message = services.message_add(ticket=ticket, author=agent, body="Try again now.")

    (email,) = mail.outbox
    headers = _headers(email)
    message.refresh_from_db()
    assert email.subject == f"[{ticket.reference}] Cannot export invoices"
    assert not email.body.startswith("Hi ")
    assert headers["message-id"] == message.email_message_id
    assert "in-reply-to" not in headers  # the first mail of its thread
    assert reference_from_address(headers["reply-to"]) == ticket.reference
    assert headers["from"] == "Helpdesk <support@localhost>"  # no support address: the default
    assert email.cc == []


@pytest.mark.django_db
def test_a_resent_reply_keeps_its_message_id(email_ticket, agent):
    from support import notifications

    message = services.message_add(ticket=email_ticket, author=agent, body="Done.")
    notifications.public_reply(email_ticket, message)
    message.refresh_from_db()
    first_id = message.email_message_id

    notifications.public_reply(email_ticket, message)  # a worker ran it twice

    assert [_headers(m)["message-id"] for m in mail.outbox] == [first_id, first_id]
    message.refresh_from_db()
    assert message.email_message_id == first_id


@pytest.mark.django_db
def test_staff_notices_carry_the_loop_header(ticket, agent, run_effects):
    with run_effects():
        services.ticket_assign(ticket=ticket, assignee=AgentFactory(username="b"), actor=agent)

    headers = _headers(mail.outbox[0])
    assert headers[LOOP_HEADER.lower()] == loop_token()
    assert headers["auto-submitted"] == "auto-generated"


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on loopback, reached through Django's SMTP backend."""
    from tests.smtp_server import SmtpServer

    servers = []

    def start(mode="accept"):
        server = SmtpServer(mode).__enter__()
        servers.append(server)
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_TIMEOUT = 5
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def _deliver_reply(ticket, agent):
    from core.models import OutboxItem
    from support.tasks import ticket_effects

    message = services.message_add(ticket=ticket, author=agent, body="Fixed, see attached.")
    item = OutboxItem.objects.get(task="support.tasks.ticket_effects")
    ticket_effects.apply(item.args, item.kwargs, headers={"outbox_id": item.pk})
    message.refresh_from_db()
    return message


@pytest.mark.django_db
def test_through_real_smtp_the_envelope_and_headers_are_right(email_ticket, agent, smtp_server):
    server = smtp_server("accept")

    message = _deliver_reply(email_ticket, agent)

    (delivered,) = server.delivered
    assert sorted(delivered["to"]) == ["<customer-a@example.com>", "<dana@partner.test>"]
    data = delivered["data"]
    assert f"Message-ID: {message.email_message_id}" in data
    assert f"In-Reply-To: {CUSTOMER_MSGID}" in data
    assert f"{LOOP_HEADER}: {loop_token()}" in data
    assert message.delivery_status == "sent"


@pytest.mark.django_db
def test_a_refused_reply_shows_as_failed_on_the_message(email_ticket, agent, smtp_server):
    smtp_server("reject")

    message = _deliver_reply(email_ticket, agent)

    assert message.delivery_status == "failed"
    assert "SMTPRecipientsRefused" in message.delivery_events[-1]["description"]
    assert message.email_message_id == ""  # it never went out


@pytest.mark.django_db
def test_automatic_replies_are_mailed_at_most_the_daily_cap_per_ticket(
    email_ticket, run_effects, settings
):
    """Two machines answering each other: the AI's replies stop being mailed at the cap,
    the messages stay on the ticket, and an agent's reply still goes out."""
    settings.HELPDESK_EMAIL_AUTO_REPLIES_PER_DAY = 2
    ai = services.AiMetadata(model="local", confidence=0.5)
    for n in range(3):
        with run_effects():
            services.message_add(
                ticket=email_ticket,
                author=None,
                sender_kind=Message.SenderKind.AI,
                body=f"Automatic answer {n}",
                ai=ai,
            )
    assert len(mail.outbox) == 2
    assert email_ticket.messages.filter(sender_kind="ai").count() == 3
    with run_effects():
        services.message_add(ticket=email_ticket, author=AgentFactory(), body="A person here.")
    assert len(mail.outbox) == 3
    assert "A person here." in mail.outbox[-1].body
