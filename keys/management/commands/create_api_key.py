"""Issue an API key and print it once."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from keys import command_args, services


class Command(BaseCommand):
    help = "Create an API key (global, or bound to one app) and print it. It is shown only now."

    def add_arguments(self, parser):
        parser.add_argument("--team", required=True, help="Team id or name.")
        parser.add_argument("--app", help="App id or name: makes an app key. Omit for a global key.")
        parser.add_argument("--name", default="Api Key")
        expiry = parser.add_mutually_exclusive_group()
        expiry.add_argument("--expires-in", type=command_args.duration, help="e.g. 30d")
        expiry.add_argument("--expires-at", type=command_args.moment, help="ISO date-time")
        parser.add_argument("--max-usage", type=int, default=-1, help="Usage-point cap; -1 unlimited.")

    def handle(self, *args, **options):
        team = command_args.team(options["team"])
        app = command_args.app_of(team, options["app"]) if options["app"] else None
        expires_at = options["expires_at"]
        if options["expires_in"] is not None:
            expires_at = timezone.now() + options["expires_in"]
        if options["max_usage"] < -1:
            raise CommandError("--max-usage must be -1 (unlimited) or a positive number.")
        key, plaintext = services.create_api_key(
            team=team, app=app, name=options["name"], expires_at=expires_at,
            max_usage_points=options["max_usage"],
        )
        self.stderr.write(f"Created {command_args.describe(key)}. Store it now; it is not shown again:")
        self.stdout.write(plaintext)
