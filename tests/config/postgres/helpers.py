"""What the PostgreSQL tests of config/postgres import (PostgreSQL only)."""

from django.db import connection


def plain_connection_params() -> dict:
    """psycopg's connection parameters for the test database, in autocommit, without Django's
    own options (its adapters context, cursor factory and binding switch)."""
    params = connection.get_connection_params()
    for django_only in ("context", "cursor_factory", "server_side_binding"):
        params.pop(django_only, None)
    return {**params, "autocommit": True}
