from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.demo import load_demo_data


class Command(BaseCommand):
    help = "Load the demo users and content (idempotent: running it twice adds nothing)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="load even with DEBUG off, for a trial (known passwords!)",
        )

    def handle(self, *args, force=False, **options):
        if settings.PRODUCTION and not force:
            raise CommandError(
                "Refusing to load demo users with known passwords when DEBUG is off; for a "
                "trial on a machine nobody else can reach, pass --force (README, Production)."
            )
        logins = load_demo_data()
        self.stdout.write(self.style.SUCCESS("Demo data loaded. Logins:"))
        for login in logins:
            self.stdout.write(
                f"  {login.role:<9} {login.username:<9} / {login.password:<14} {login.where}"
            )
