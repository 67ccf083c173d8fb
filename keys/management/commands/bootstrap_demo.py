"""Set up the demo team, app and keys for the embedded default, and print how to call the server.

Idempotent: the team and app are created once. The server stores only key hashes and so can
never print an earlier key again; each run therefore revokes the previous demo keys and prints
fresh ones, so the printed keys always work.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from chat.models import App
from keys import services
from keys.models import Team

DEMO_TEAM = "demo"
DEMO_APP = "Demo app"
GLOBAL_KEY_NAME = "demo global key"
APP_KEY_NAME = "demo app key"


class Command(BaseCommand):
    help = "Create the demo team, app and keys (replacing earlier demo keys) and print them."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="Shown in examples.")

    @transaction.atomic
    def handle(self, *args, **options):
        team, _ = Team.objects.get_or_create(name=DEMO_TEAM)
        app, _ = App.objects.get_or_create(
            team=team, name=DEMO_APP,
            defaults={"intro": "The demo app of the embedded default.", "welcome_text": "Hello!"},
        )
        for old in team.api_keys.filter(name__in=[GLOBAL_KEY_NAME, APP_KEY_NAME]):
            services.revoke_api_key(key=old)
        _, global_key = services.create_api_key(team=team, name=GLOBAL_KEY_NAME)
        _, app_key = services.create_api_key(team=team, app=app, name=APP_KEY_NAME)

        base = options["base_url"].rstrip("/")
        self.stdout.write(
            f"""
Demo team '{team.name}' ({team.pk}), app '{app.name}' ({app.pk}).
Keys (new on every run; earlier demo keys are now revoked):
  global key: {global_key}
  app key:    {app_key}

Try:
  curl -s {base}/api/v1/chat/completions -H 'Authorization: Bearer {app_key}' \\
       -H 'Content-Type: application/json' \\
       -d '{{"chatId": "111", "stream": false, "messages": [{{"role": "user", "content": "Hello"}}]}}'
  curl -s {base}/api/core/dataset/create -H 'Authorization: Bearer {global_key}' \\
       -H 'Content-Type: application/json' -d '{{"name": "My dataset"}}'
  curl -s -X POST {base}/api/core/dataset/list -H 'Authorization: Bearer {global_key}'
API docs: {base}/api/docs/
"""
        )
