"""Model instances and values from rows read with raw SQL, converted as the ORM converts them.

For the few hot reads written in SQL (the chat turn's read, the key lookup, the search's rows):
the ORM costs more to compile those statements than the database takes to run them, but what
they return must be exactly what the ORM would return (aware datetimes on SQLite, parsed JSON,
booleans), so the conversion is the ORM's own: the backend's converters and the field's.
"""

import functools

from django.db import DEFAULT_DB_ALIAS, connections

_converters: dict[tuple, list] = {}


@functools.cache
def default_vendor() -> str:
    """The default database's vendor, read once: through `connections` it is a thread-local
    read on every call, and on the event loop each request's first one builds a database
    wrapper for that request (~12 µs)."""
    return connections[DEFAULT_DB_ALIAS].vendor


def _converters_of(model, fields) -> list[tuple[int, object, list]]:
    """(position, column, converters) of the fields that have converters."""
    cache_key = (model, tuple(field.attname for field in fields), default_vendor())
    if cache_key not in _converters:
        db, table = connections[DEFAULT_DB_ALIAS], model._meta.db_table
        _converters[cache_key] = [
            (n, col, converters)
            for n, col in enumerate(field.get_col(table) for field in fields)
            if (converters := db.ops.get_db_converters(col) + col.get_db_converters(db))
        ]
    return _converters[cache_key]


def converted(model, fields, values) -> list:
    """`values`, read from `fields` of `model`'s table, as the ORM would give them."""
    out = list(values)
    converters = _converters_of(model, fields)
    if not converters:  # e.g. a key or an app on PostgreSQL: psycopg's values are the ORM's
        return out
    # The connection looked up once: each lookup through django.db.connection is a
    # thread-local read (~10 µs on the event loop), and a row has dozens of converters.
    db = connections[DEFAULT_DB_ALIAS]
    for n, col, functions in converters:
        for convert in functions:
            out[n] = convert(out[n], col, db)
    return out


def value_converter(model, field_name: str):
    """The function that converts one raw value of `model.field_name` as the ORM does (for a
    column read row after row: the converters are looked up once)."""
    field = model._meta.get_field(field_name)
    found = _converters_of(model, [field])
    if not found:
        return lambda value: value
    [(_, col, converters)] = found
    db = connections[DEFAULT_DB_ALIAS]

    def convert(value):
        for function in converters:
            value = function(value, col, db)
        return value

    return convert


def model_instance(model, fields, values):
    """A model instance from raw column values of `fields` (in that order)."""
    return model.from_db(DEFAULT_DB_ALIAS, [field.attname for field in fields], converted(model, fields, values))


def columns(alias: str, fields) -> str:
    """`alias.column, …` for `fields`: a SELECT list read back by position."""
    return ", ".join(f"{alias}.{field.column}" for field in fields)
