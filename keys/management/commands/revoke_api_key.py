"""Revoke a key at once."""

from django.core.management.base import BaseCommand

from keys import command_args, services


class Command(BaseCommand):
    help = "Revoke an API key now. Irreversible."

    def add_arguments(self, parser):
        parser.add_argument("key", help="Key id or prefix, as list_api_keys shows.")

    def handle(self, *args, **options):
        key = services.revoke_api_key(key=command_args.key(options["key"]))
        self.stdout.write(f"Revoked {command_args.describe(key)} at {key.revoked_at.isoformat()}.")
