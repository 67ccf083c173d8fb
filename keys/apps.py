from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "keys"
    verbose_name = "Teams and API keys"

    def ready(self) -> None:
        from keys import schema  # noqa: F401  (registers the OpenAPI auth extension)
