"""Public roadmap pages (server-rendered, thin). Anyone reads; voting and submitting need
an account. Vote buttons are plain forms: with JavaScript they are sent with ``fetch`` and
answered in JSON (no reload); without it the page posts and comes back."""

from __future__ import annotations

import math

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from core import accounts
from core.errors import DomainError
from feedback import selectors, services, throttling
from feedback.forms import RequestForm, SearchForm
from feedback.models import Vote

VOTE_VALUES = {"up": Vote.Value.UP, "down": Vote.Value.DOWN}


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def index(request):
    form = SearchForm(request.GET or None)
    params = form.cleaned_data if form.is_valid() else {}
    sort = params.get("sort") or "top"
    open_requests = selectors.request_list(user=request.user).filter(
        status__in=selectors.OPEN_STATUSES
    )
    if params.get("kind"):
        open_requests = open_requests.filter(kind=params["kind"])
    open_requests = selectors.request_search(open_requests, q=params.get("q", ""), order=sort)
    page = Paginator(open_requests, 20).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "feedback/index.html",
        {
            "columns": selectors.roadmap_columns(user=request.user),
            "form": form,
            "page": page,
            "sort": sort,
            "query": query.urlencode(),
        },
    )


def detail(request, pk):
    feature = selectors.request_get(user=request.user, pk=pk)
    if feature.merged_into_id:
        messages.info(request, f"“{feature.title}” was merged into this request.")
        return redirect("feedback:detail", pk=feature.merged_into_id)
    return render(
        request,
        "feedback/detail.html",
        {"feature": feature, "history": selectors.request_history(feature)},
    )


@login_required
@accounts.verified_email_required
def submit(request):
    form = RequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        allowed, wait = throttling.allow(request, throttling.SUBMIT)
        if not allowed:
            form.add_error(
                None, f"You have submitted many requests lately; try again in {_minutes(wait)}."
            )
        else:
            try:
                feature = services.request_submit(author=request.user, **form.cleaned_data)
            except DomainError as error:
                form.add_domain_error(error)
            else:
                messages.success(request, "Thanks! Your request is on the roadmap, with your vote.")
                return redirect(feature)
    status = 400 if request.method == "POST" else 200
    return render(request, "feedback/submit.html", {"form": form}, status=status)


def _minutes(seconds: float | None) -> str:
    minutes = max(1, math.ceil((seconds or 60) / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _vote_reply(request, feature, *, message: str, status: int = 200, level=messages.SUCCESS):
    if _wants_json(request):
        body = {
            "id": feature.pk,
            "upvotes": feature.upvotes,
            "downvotes": feature.downvotes,
            "weighted_score": str(feature.weighted_score),
            "my_vote": getattr(feature, "my_vote", None),
            "message": message,
        }
        if status >= 400:
            body["error"] = message
        return JsonResponse(body, status=status)
    messages.add_message(request, level, message)
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = feature.get_absolute_url()
    return redirect(target)


@require_POST
def vote(request, pk):
    feature = selectors.request_get(user=request.user, pk=pk)
    if not request.user.is_authenticated:
        login_url = f"{reverse('login')}?next={feature.get_absolute_url()}"
        if _wants_json(request):
            return JsonResponse({"error": "Sign in to vote.", "login_url": login_url}, status=401)
        return redirect_to_login(feature.get_absolute_url())
    if not accounts.email_verified(request.user):  # no vote-stuffing with throwaway accounts
        if _wants_json(request):
            body = {"detail": accounts.MESSAGE, "code": accounts.CODE, "error": accounts.MESSAGE}
            return JsonResponse(body, status=403)
        return accounts.verification_required_page(request)
    choice = request.POST.get("value", "")
    if choice not in {*VOTE_VALUES, "withdraw"}:
        return _vote_reply(
            request,
            feature,
            message="Choose up, down or withdraw.",
            status=400,
            level=messages.ERROR,
        )
    allowed, wait = throttling.allow(request, throttling.VOTE)
    if not allowed:
        return _vote_reply(
            request,
            feature,
            message=f"You have voted a lot lately; try again in {_minutes(wait)}.",
            status=429,
            level=messages.ERROR,
        )
    try:
        if choice == "withdraw":
            services.vote_withdraw(request=feature, user=request.user)
            message = "Your vote was withdrawn."
        else:
            services.vote_cast(request=feature, user=request.user, value=VOTE_VALUES[choice])
            message = "Thanks for voting!"
    except DomainError as error:
        return _vote_reply(
            request, feature, message=error.message, status=error.http_status, level=messages.ERROR
        )
    feature = selectors.request_get(user=request.user, pk=pk)
    return _vote_reply(request, feature, message=message)
