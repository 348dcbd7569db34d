"""Run the built-in SMTP receiver (the email channel's SMTP door, support.email.smtp)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from support.email.smtp import serve


class Command(BaseCommand):
    help = (
        "Receive mail for the support addresses over SMTP "
        "(INBOUND_SMTP_HOST:INBOUND_SMTP_PORT, default 127.0.0.1:2525) until stopped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=None, help="address to listen on")
        parser.add_argument("--port", type=int, default=None, help="port to listen on")

    def handle(self, *args, host=None, port=None, **options):
        serve(host=host or settings.INBOUND_SMTP_HOST, port=port or settings.INBOUND_SMTP_PORT)
