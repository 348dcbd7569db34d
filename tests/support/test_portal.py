"""The customer portal: sign up, open, follow, reply, rate; others' tickets answer 404."""

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from support import services
from support.models import Ticket


def detail(ticket):
    return f"/tickets/{ticket.reference}/"


@pytest.mark.django_db
def test_sign_up_creates_a_customer_who_confirms_their_email(client, mailoutbox):
    response = client.post(
        "/accounts/signup/",
        {
            "first_name": "Nia",
            "last_name": "",
            "email": "NIA@example.com",
            "password1": "a-long-pass-phrase-42",
            "password2": "a-long-pass-phrase-42",
        },
    )

    assert response.status_code == 302 and response.url == "/accounts/confirm-email/"
    user = get_user_model().objects.get(email="nia@example.com")
    assert user.first_name == "Nia" and not user.is_staff
    assert user.customer_profile.organization is None
    assert [mail.to for mail in mailoutbox] == [["nia@example.com"]]
    assert client.get("/tickets/").status_code == 302  # not signed in until confirmed


@pytest.mark.django_db
def test_sign_up_errors_are_shown_on_their_fields(client):
    response = client.post(
        "/accounts/signup/",
        {
            "first_name": "",
            "email": "not-an-email",
            "password1": "short",
            "password2": "different",
        },
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_first_name-errors"' in html
    assert 'id="id_email-errors"' in html
    assert "is-invalid" in html


@pytest.mark.django_db
def test_pages_need_sign_in(client, ticket):
    for path in ("/tickets/", "/tickets/new/", detail(ticket)):
        response = client.get(path)
        assert response.status_code == 302 and response.url.startswith("/accounts/login/")


@pytest.mark.django_db
def test_open_a_ticket_from_the_form(client, customer):
    client.force_login(customer)

    response = client.post(
        "/tickets/new/",
        {
            "subject": "Sync fails",
            "type": "bug",
            "description": "Since this morning.",
            "attachments": [SimpleUploadedFile("log.txt", b"trace")],
        },
    )

    ticket = Ticket.objects.get()
    assert response.status_code == 302 and response.url == detail(ticket)
    page = client.get(response.url).content.decode()
    assert "Sync fails" in page and "Since this morning." in page and "log.txt" in page
    assert f"Ticket {ticket.reference} is open" in page  # the success message


@pytest.mark.django_db
def test_form_errors_are_shown_inline_and_nothing_is_saved(client, customer):
    client.force_login(customer)

    response = client.post(
        "/tickets/new/",
        {
            "subject": "",
            "type": "general",
            "description": "d",
            "attachments": [SimpleUploadedFile("x.exe", b"MZ")],
        },
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_subject-errors"' in html
    assert not Ticket.objects.exists()


@pytest.mark.django_db
def test_domain_errors_land_on_the_field(client, customer):
    client.force_login(customer)

    response = client.post(
        "/tickets/new/",
        {
            "subject": "s",
            "type": "general",
            "description": "d",
            "attachments": [SimpleUploadedFile("x.exe", b"MZ")],
        },
    )

    assert "not accepted" in response.content.decode()
    assert not Ticket.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("viewer", "visible"),
    [
        ("customer", True),
        ("org_admin", True),
        ("colleague", False),
        ("other_customer", False),
        ("agent", True),
    ],
)
def test_who_sees_the_ticket_page(request, client, ticket, viewer, visible):
    client.force_login(request.getfixturevalue(viewer))

    response = client.get(detail(ticket))

    assert response.status_code == (200 if visible else 404)


@pytest.mark.django_db
def test_my_tickets_lists_own_tickets_and_the_org_admin_sees_the_org(
    client, ticket, colleague, org_admin, other_customer
):
    theirs = services.ticket_open(requester=colleague, subject="Colleague's", description="d")
    foreign = services.ticket_open(requester=other_customer, subject="Foreign", description="d")

    client.force_login(colleague)
    page = client.get("/tickets/").content.decode()
    assert theirs.reference in page and ticket.reference not in page

    client.force_login(org_admin)
    page = client.get("/tickets/").content.decode()
    assert theirs.reference in page and ticket.reference in page
    assert foreign.reference not in page
    mine_only = client.get("/tickets/?scope=mine").content.decode()
    assert ticket.reference not in mine_only


@pytest.mark.django_db
def test_conversation_hides_internal_notes(client, ticket, agent, customer):
    services.message_add(ticket=ticket, author=agent, body="We'll refund you.")
    services.message_add(ticket=ticket, author=agent, body="SECRET: VIP", is_internal=True)
    client.force_login(customer)

    html = client.get(detail(ticket)).content.decode()

    assert "We&#x27;ll refund you." in html
    assert "SECRET: VIP" not in html


@pytest.mark.django_db
def test_reply_and_reopen_by_replying(client, ticket, agent, customer):
    services.ticket_resolve(ticket=ticket, actor=agent)
    client.force_login(customer)

    response = client.post(f"{detail(ticket)}reply/", {"body": "It broke again"})

    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == "new" and ticket.messages.last().body == "It broke again"


@pytest.mark.django_db
def test_reply_to_a_closed_ticket_shows_why(client, ticket, agent, customer):
    services.ticket_close(ticket=ticket, actor=agent)
    client.force_login(customer)

    response = client.post(f"{detail(ticket)}reply/", {"body": "Hello?"})

    assert response.status_code == 400
    assert "This ticket is closed" in response.content.decode()


@pytest.mark.django_db
def test_rate_once_resolved(client, ticket, agent, customer):
    client.force_login(customer)
    assert 'id="rate"' not in client.get(detail(ticket)).content.decode()
    services.ticket_resolve(ticket=ticket, actor=agent)
    assert 'id="rate"' in client.get(detail(ticket)).content.decode()

    bad = client.post(f"{detail(ticket)}rate/", {"rating": "9"})
    good = client.post(f"{detail(ticket)}rate/", {"rating": "5", "comment": "Great"})

    assert bad.status_code == 400 and "Select a valid choice" in bad.content.decode()
    assert good.status_code == 302
    ticket.refresh_from_db()
    assert ticket.satisfaction_rating == 5
    assert 'id="rate"' not in client.get(detail(ticket)).content.decode()


@pytest.mark.django_db
def test_talk_to_a_person(client, ticket, customer):
    client.force_login(customer)

    client.post(f"{detail(ticket)}escalate/", {"reason": "Please call me"})

    escalation = ticket.escalations.get()
    assert escalation.kind == "customer_requested" and escalation.created_by == customer


@pytest.mark.django_db
def test_attachments_are_only_served_to_those_who_may_see_them(
    client, agent, customer, other_customer
):
    ticket = services.ticket_open(
        requester=customer,
        subject="s",
        description="d",
        attachments=[SimpleUploadedFile("a.txt", b"hello")],
    )
    note = services.message_add(
        ticket=ticket,
        author=agent,
        body="n",
        is_internal=True,
        attachments=[SimpleUploadedFile("b.txt", b"staff")],
    )
    public = ticket.messages.first().attachments.get()
    internal = note.attachments.get()

    def fetch(user, attachment):
        client.force_login(user)
        return client.get(f"{detail(ticket)}attachments/{attachment.pk}/")

    ok = fetch(customer, public)
    assert ok.status_code == 200 and b"".join(ok.streaming_content) == b"hello"
    assert fetch(customer, internal).status_code == 404
    assert fetch(other_customer, public).status_code == 404
    assert fetch(agent, internal).status_code == 200
