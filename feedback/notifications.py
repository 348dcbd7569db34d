"""Emails to the voters of a feature request when its status changes.

Each voter (up or down, active, with an address) gets one email of their own: voters never
see each other's addresses. The person who made the change is not emailed.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string

from feedback.models import FeatureRequestEvent


def status_changed(event: FeatureRequestEvent) -> int:
    request = event.request
    recipients = (
        get_user_model()
        .objects.filter(feature_votes__request=request, is_active=True)
        .exclude(email="")
        .exclude(pk=event.actor_id)
        .values_list("email", "first_name", "username")
        .distinct()
        .order_by("email")
    )
    context = {
        "request": request,
        "event": event,
        "request_url": f"{settings.SITE_URL}{request.get_absolute_url()}",
        "roadmap_url": f"{settings.SITE_URL}/roadmap/",
    }
    subject = f"[Roadmap] {request.title}: now {event.get_new_status_display().lower()}"
    emails = []
    for address, first_name, username in recipients:
        personal = {**context, "name": first_name or username}
        email = EmailMultiAlternatives(
            subject=subject,
            body=render_to_string("feedback/email/status_changed.txt", personal),
            to=[address],
        )
        email.attach_alternative(
            render_to_string("feedback/email/status_changed.html", personal), "text/html"
        )
        emails.append(email)
    if not emails:
        return 0
    with get_connection() as connection:
        return connection.send_messages(emails) or 0
