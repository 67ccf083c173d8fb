"""Replace a key by a new one; the old key keeps working for a grace period."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from keys import command_args, services


class Command(BaseCommand):
    help = "Rotate an API key: print a new key; the old one works until the grace period ends."

    def add_arguments(self, parser):
        parser.add_argument("key", help="Key id or prefix, as list_api_keys shows.")
        when = parser.add_mutually_exclusive_group()
        when.add_argument("--grace", type=command_args.duration, help="Default: 24h (settings).")
        when.add_argument("--now", action="store_true", help="Revoke the old key at once.")

    def handle(self, *args, **options):
        old = command_args.key(options["key"])
        grace = timedelta(0) if options["now"] else options["grace"]
        try:
            new, plaintext = services.rotate_api_key(key=old, grace=grace)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        old.refresh_from_db()
        self.stderr.write(
            f"Rotated {command_args.describe(old)}: the old key stops working at "
            f"{old.revoked_at.isoformat()}. New key {new.pk}, shown only now:"
        )
        self.stdout.write(plaintext)
