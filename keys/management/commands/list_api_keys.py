"""List keys (never their secrets)."""

from django.core.management.base import BaseCommand

from keys import command_args, selectors


class Command(BaseCommand):
    help = "List API keys: id, prefix, team, scope, state, usage, last use. Secrets are never shown."

    def add_arguments(self, parser):
        parser.add_argument("--team", help="Only this team (id or name).")

    def handle(self, *args, **options):
        team = command_args.team(options["team"]) if options["team"] else None
        rows = [("ID", "PREFIX", "TEAM", "SCOPE", "NAME", "STATE", "USAGE", "EXPIRES", "LAST USED")]
        for key in selectors.keys_of(team=team):
            cap = "∞" if key.max_usage_points < 0 else str(key.max_usage_points)
            rows.append((
                str(key.pk), f"{key.prefix}…", key.team.name, f"app:{key.app_id}" if key.app_id else "global",
                key.name, key.state().value, f"{key.usage_points}/{cap}",
                key.expires_at.isoformat(timespec="seconds") if key.expires_at else "-",
                key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "-",
            ))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
