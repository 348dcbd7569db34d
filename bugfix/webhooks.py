"""``POST /integrations/github/webhook/``: what GitHub tells us about our issues and PRs.

- The body's HMAC SHA-256 with ``GITHUB_WEBHOOK_SECRET`` must equal ``X-Hub-Signature-256``
  (constant-time compare); otherwise, or with no secret configured, 401.
- Each delivery is stored by its ``X-GitHub-Delivery`` id: a replay of a processed one is
  answered 200 and changes nothing; a failed one (our error) can be delivered again.
- ``pull_request`` closed: merged → link ``pr_merged`` and the ticket resolved with a
  message to the customer; not merged → ``pr_rejected``. ``check_suite`` / ``check_run``:
  the link's checks state. ``issues`` closed: an event on the ticket. ``ping``: 200.
  Events we do not use: 204. Events about PRs/issues we did not open: 200, ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from bugfix import services
from bugfix.models import GithubDelivery, GithubLink

logger = logging.getLogger(__name__)
Checks = GithubLink.Checks
HANDLED = {"pull_request", "check_suite", "check_run", "issues", "ping"}


def signature_valid(body: bytes, header: str | None, secret: str) -> bool:
    if not secret or not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


@csrf_exempt
@require_POST
def webhook(request):
    if not signature_valid(
        request.body,
        request.headers.get("X-Hub-Signature-256"),
        settings.GITHUB_WEBHOOK_SECRET,
    ):
        logger.warning("GitHub webhook with a missing or bad signature refused")
        return JsonResponse({"detail": "Invalid or missing signature."}, status=401)
    event = request.headers.get("X-GitHub-Event", "")
    delivery_id = request.headers.get("X-GitHub-Delivery", "")
    if not delivery_id:
        return JsonResponse({"detail": "X-GitHub-Delivery is missing."}, status=400)
    try:
        payload = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"detail": "The body is not JSON."}, status=400)
    if event not in HANDLED:
        return HttpResponse(status=204)

    previous = GithubDelivery.objects.filter(delivery_id=delivery_id).first()
    if previous is not None and previous.result != GithubDelivery.Result.FAILED:
        return JsonResponse({"status": "duplicate", "delivery": delivery_id})
    try:
        with transaction.atomic():
            result = _dispatch(event, payload)
            _record(delivery_id, event, payload, result)
    except IntegrityError:  # the same delivery being processed concurrently
        return JsonResponse({"status": "duplicate", "delivery": delivery_id})
    except Exception as exc:
        logger.exception("GitHub webhook %s %s failed", event, delivery_id)
        _record(delivery_id, event, payload, GithubDelivery.Result.FAILED, error=repr(exc))
        return JsonResponse({"detail": "Processing failed; deliver it again."}, status=500)
    return JsonResponse({"status": result, "delivery": delivery_id})


def _record(delivery_id, event, payload, result, error: str = "") -> None:
    GithubDelivery.objects.update_or_create(
        delivery_id=delivery_id,
        defaults={
            "event": event,
            "action": str(payload.get("action", ""))[:50],
            "payload": payload,
            "result": result,
            "error": error,
        },
    )


def _repository(payload) -> str:
    return (payload.get("repository") or {}).get("full_name", "")


def _dispatch(event: str, payload: dict) -> str:
    Result = GithubDelivery.Result
    repository = _repository(payload)
    if event == "ping":
        return Result.PROCESSED
    if event == "pull_request":
        pull = payload.get("pull_request") or {}
        link = GithubLink.objects.filter(
            repository=repository, pr_number=pull.get("number")
        ).first()
        if link is None or payload.get("action") != "closed":
            return Result.IGNORED
        services.link_pull_request_closed(link_id=link.pk, merged=bool(pull.get("merged")))
        return Result.PROCESSED
    if event in ("check_suite", "check_run"):
        item = payload.get(event) or {}
        suite = item.get("check_suite") or item
        numbers = [p.get("number") for p in item.get("pull_requests") or []]
        branch = suite.get("head_branch") or ""
        links = GithubLink.objects.filter(repository=repository).filter(
            pr_number__in=[n for n in numbers if n]
        ) | GithubLink.objects.filter(repository=repository, branch_name=branch).exclude(
            branch_name=""
        )
        state = _checks_state(item)
        found = False
        for link in links.distinct():
            services.link_record_checks(link_id=link.pk, state=state)
            found = True
        return Result.PROCESSED if found else Result.IGNORED
    if event == "issues":
        issue = payload.get("issue") or {}
        link = GithubLink.objects.filter(
            repository=repository, issue_number=issue.get("number")
        ).first()
        if link is None or payload.get("action") != "closed":
            return Result.IGNORED
        services.link_issue_closed(link_id=link.pk, reason=issue.get("state_reason") or "")
        return Result.PROCESSED
    return Result.IGNORED


def _checks_state(item: dict) -> str:
    if item.get("status") != "completed":
        return Checks.PENDING
    if item.get("conclusion") in ("success", "neutral", "skipped"):
        return Checks.PASSED
    return Checks.FAILED
