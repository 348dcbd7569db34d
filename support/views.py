"""Customer portal pages (server-rendered, thin): each view calls one selector or
service and turns domain errors into form errors."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST

from core.accounts import verified_email_required
from core.errors import DomainError
from core.roles import is_agent
from support import budget, selectors, services
from support import custom_fields as cf
from support.forms import EscalateForm, RateForm, ReplyForm, TicketFieldsForm, TicketForm
from support.models import DONE_STATUSES, OPEN_STATUSES, ActionRun, Attachment, Escalation, Ticket


def home(request):
    return render(request, "support/home.html")


@login_required
@require_POST
def verification_resend(request):
    """Send a new verification link to the person's unverified address (the notice's
    button); then back to the page they were on."""
    from allauth.account.internal.flows.email_verification import (
        send_verification_email_to_address,
    )
    from allauth.account.models import EmailAddress

    address = (
        EmailAddress.objects.filter(user=request.user, verified=False)
        .order_by("-primary", "-pk")
        .first()
    )
    if address is None:
        messages.info(request, "Your email address is already confirmed.")
    elif not send_verification_email_to_address(request, address):
        messages.warning(
            request, "We sent a link a moment ago; please wait a few minutes and check spam."
        )
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "support:ticket-list"
    return redirect(target)


def admin_login(request):
    """Staff sign in through the same form as everyone (lockout, two-factor), not admin's."""
    if request.user.is_authenticated and not is_agent(request.user):
        # As admin's own login page did: say so (200), offer to switch accounts.
        return render(request, "account/not_staff.html")
    target = request.GET.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("admin:index")
    if request.user.is_authenticated:
        return redirect(target)
    return redirect(f"{reverse('account_login')}?{urlencode({'next': target})}")


@login_required
def ticket_list(request):
    tickets = selectors.ticket_list(user=request.user)
    state = request.GET.get("state", "open")
    if state == "open":
        tickets = tickets.filter(status__in=OPEN_STATUSES)
    elif state == "done":
        tickets = tickets.filter(status__in=DONE_STATUSES)
    if request.GET.get("scope") == "mine":
        tickets = tickets.filter(requester=request.user)
    page = Paginator(tickets.order_by("-updated_at"), 20).get_page(request.GET.get("page"))
    profile = getattr(request.user, "customer_profile", None)
    return render(
        request,
        "support/ticket_list.html",
        {
            "page": page,
            "state": state,
            "scope": request.GET.get("scope", "all"),
            "is_org_admin": bool(profile and profile.is_org_admin and profile.organization_id),
        },
    )


@login_required
@verified_email_required
def ticket_new(request):
    form = TicketForm(request.POST or None, request.FILES or None, custom_fields=cf.active_fields())
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            # One budget with the API and the chat (support.budget): the form comes back
            # with the error when it is spent.
            budget.ticket_budget_take(user=request.user, address=budget.client_address(request))
            ticket = services.ticket_open(
                requester=request.user,
                subject=form.cleaned_data["subject"],
                description=form.cleaned_data["description"],
                type=form.cleaned_data["type"],
                attachments=form.cleaned_data["attachments"],
                custom_fields=form.custom_values(),
            )
        except budget.TicketBudgetSpent as spent:
            form.add_domain_error(spent)
            status = spent.http_status
        except DomainError as error:
            form.add_domain_error(error)
        else:
            messages.success(
                request, f"Ticket {ticket.reference} is open. We'll reply here and by email."
            )
            return redirect(ticket)
    return render(request, "support/ticket_new.html", {"form": form}, status=status)


def _detail(
    request,
    reference,
    *,
    reply_form=None,
    rate_form=None,
    escalate_form=None,
    fields_form=None,
    status=200,
):
    ticket = selectors.ticket_with_conversation(user=request.user, reference=reference)
    is_requester = ticket.requester_id == request.user.pk
    definitions = cf.active_fields()
    return render(
        request,
        "support/ticket_detail.html",
        {
            "ticket": ticket,
            **_merged_into(request, ticket),
            "conversation": ticket.visible_messages,
            "reply_form": reply_form or ReplyForm(),
            "rate_form": rate_form or RateForm(),
            "escalate_form": escalate_form or EscalateForm(),
            "can_reply": ticket.status != "closed",
            "can_rate": is_requester
            and ticket.status in DONE_STATUSES
            and ticket.satisfaction_rating is None,
            "can_escalate": ticket.status in OPEN_STATUSES and ticket.status != "escalated",
            "can_resolve": is_requester and ticket.status in OPEN_STATUSES,
            **_custom_fields(ticket, definitions, is_requester=is_requester, form=fields_form),
            **_actions(ticket, request.user),
        },
        status=status,
    )


def _actions(ticket, user) -> dict:
    """What the AI asked to do on the ticket: the runs awaiting the customer's decision
    (with Confirm / Decline for those who may decide) and the others with their status."""
    runs = list(services.action_runs_of(ticket=ticket))
    waiting = ActionRun.Status.AWAITING_CONFIRMATION
    return {
        "pending_actions": [run for run in runs if run.status == waiting],
        "past_actions": [run for run in runs if run.status != waiting],
        "can_decide_actions": services.action_run_may_decide(ticket=ticket, user=user),
    }


def _custom_fields(ticket, definitions, *, is_requester: bool, form=None) -> dict:
    """The values shown to customers, and the requester's form for the ones they fill in
    (while the ticket is not closed)."""
    values = cf.visible_values(ticket.custom_fields, definitions, for_customer=True)
    shown = [(f.label, cf.display(f, values[f.key])) for f in definitions if f.key in values]
    if form is None and is_requester and ticket.status != "closed":
        form = TicketFieldsForm(custom_fields=definitions, values=ticket.custom_fields)
    if form is not None and not form.fields:
        form = None
    return {"custom_values": shown, "fields_form": form}


def _merged_into(request, ticket) -> dict:
    """A merged duplicate's banner: the survivor's reference, linked if they may see it."""
    if not ticket.merged_into_id:
        return {}
    survivor = (
        Ticket.objects.filter(pk=services.survivor_id(ticket)).only("pk", "reference").first()
    )
    visible = selectors.ticket_list(user=request.user).filter(pk=survivor.pk).exists()
    return {"merged_into": survivor, "merged_into_visible": visible}


@login_required
def ticket_detail(request, reference):
    return _detail(request, reference)


def _post_form(request, reference, *, form_class, form_name, action, success):
    """A conversation-page form: validate, run the service, report; on a refusal show the
    page again with the reason on the form."""
    ticket = selectors.ticket_get(user=request.user, reference=reference)
    form = form_class(request.POST, request.FILES)
    if form.is_valid():
        try:
            done = action(ticket, form.cleaned_data)
        except DomainError as error:
            form.add_domain_error(error)
        else:
            messages.success(request, success)
            # A reply to a merged duplicate went on to its survivor: show it there.
            moved_to = getattr(done, "ticket", ticket)
            if (
                moved_to.pk != ticket.pk
                and selectors.ticket_list(user=request.user).filter(pk=moved_to.pk).exists()
            ):
                return redirect(moved_to)
            return redirect(ticket)
    return _detail(request, reference, status=400, **{form_name: form})


@login_required
@require_POST
def ticket_reply(request, reference):
    return _post_form(
        request,
        reference,
        form_class=ReplyForm,
        form_name="reply_form",
        success="Your reply was sent.",
        action=lambda ticket, data: services.message_add(
            ticket=ticket, author=request.user, body=data["body"], attachments=data["attachments"]
        ),
    )


@login_required
@require_POST
def ticket_rate(request, reference):
    return _post_form(
        request,
        reference,
        form_class=RateForm,
        form_name="rate_form",
        success="Thank you for rating us.",
        action=lambda ticket, data: services.ticket_rate(
            ticket=ticket, actor=request.user, rating=data["rating"], comment=data["comment"]
        ),
    )


@login_required
@require_POST
def ticket_escalate(request, reference):
    return _post_form(
        request,
        reference,
        form_class=EscalateForm,
        form_name="escalate_form",
        success="A person from the team will take it from here.",
        action=lambda ticket, data: services.ticket_escalate(
            ticket=ticket,
            kind=Escalation.Kind.CUSTOMER_REQUESTED,
            reason=data["reason"],
            actor=request.user,
        ),
    )


@login_required
@require_POST
def ticket_fields(request, reference):
    """The requester fills in or corrects the ticket's fields they may edit."""
    ticket = selectors.ticket_get(user=request.user, reference=reference)
    if ticket.requester_id != request.user.pk:
        raise Http404
    form = TicketFieldsForm(
        request.POST, custom_fields=cf.active_fields(), values=ticket.custom_fields
    )
    if form.is_valid():
        values = form.custom_values(changed_only=True)
        try:
            if values:
                services.ticket_set_custom_fields(ticket=ticket, values=values, actor=request.user)
        except DomainError as error:
            form.add_domain_error(error)
        else:
            messages.success(request, "Saved." if values else "Nothing changed.")
            return redirect(ticket)
    return _detail(request, reference, fields_form=form, status=400)


@login_required
@require_POST
def ticket_resolve(request, reference):
    ticket = selectors.ticket_get(user=request.user, reference=reference)
    if ticket.requester_id != request.user.pk:
        raise Http404
    try:
        services.ticket_resolve(ticket=ticket, actor=request.user)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Marked as solved. How did we do?")
    return redirect(ticket)


def _action_decision(request, reference, pk, *, service, success: str):
    """Confirm or decline one of the ticket's actions, then back to the ticket."""
    ticket = selectors.ticket_get(user=request.user, reference=reference)
    run = get_object_or_404(services.action_runs_of(ticket=ticket), pk=pk)
    try:
        service(run=run, actor=request.user)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, success)
    return redirect(ticket)


@login_required
@require_POST
def ticket_action_confirm(request, reference, pk):
    return _action_decision(
        request,
        reference,
        pk,
        service=services.action_run_confirm,
        success="Confirmed. We will let you know here when it is done.",
    )


@login_required
@require_POST
def ticket_action_decline(request, reference, pk):
    return _action_decision(
        request,
        reference,
        pk,
        service=services.action_run_decline,
        success="Declined: nothing was changed.",
    )


@login_required
def attachment_download(request, reference, pk):
    ticket = selectors.ticket_get(user=request.user, reference=reference)
    attachment = get_object_or_404(
        Attachment.objects.select_related("message"), pk=pk, message__ticket=ticket
    )
    if attachment.message.is_internal and not selectors.is_agent(request.user):
        raise Http404
    return FileResponse(
        attachment.file.open("rb"),
        as_attachment=True,
        filename=attachment.filename,
        content_type=attachment.content_type,
    )
