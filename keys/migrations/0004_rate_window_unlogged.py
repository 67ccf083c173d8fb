"""keys_ratewindow UNLOGGED on PostgreSQL: a rate-limit count is written on every API request
and is not worth a WAL flush (a transaction touching only unlogged tables commits without
one). After a crash or on a standby the counts start again from zero — harmless for a window
of minutes. Nothing to do on SQLite."""

from django.db import migrations


def set_unlogged(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE keys_ratewindow SET UNLOGGED")


def set_logged(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE keys_ratewindow SET LOGGED")


class Migration(migrations.Migration):
    dependencies = [("keys", "0003_rate_window")]

    operations = [migrations.RunPython(set_unlogged, set_logged, elidable=False)]
