"""EmbeddingField: a vector of float32, stored the way each database searches it best.

PostgreSQL: pgvector's `vector` type without fixed dimensions, so datasets whose embedding models
differ in size share one column (the HNSW indexes are per dimension: expression + partial
indexes, see datasets/search/vector/pgvector.py). SQLite (and anything else): a BLOB of
little-endian float32, read back with NumPy. Values go in and come out as 1-D `numpy.float32`
arrays (lists are accepted going in).
"""

import numpy as np
from django.db import models


def to_float32(value) -> np.ndarray:
    """A 1-D little-endian float32 array of `value` (array, list or tuple of numbers)."""
    array = np.asarray(value, dtype="<f4")
    if array.ndim != 1:
        raise ValueError(f"an embedding is a 1-D vector, not an array of shape {array.shape}")
    return array


def vector_literal(value) -> str:
    """pgvector's text form: "[0.1,0.2,…]". Python's float repr round-trips float32 exactly."""
    return "[" + ",".join(map(repr, to_float32(value).tolist())) + "]"


def sparse_literal(value) -> str:
    """pgvector's `sparsevec` text form: "{1:0.1,7:0.2}/512", the non-zero values by their
    1-based positions, then the size."""
    vector = to_float32(value)
    positions = np.flatnonzero(vector)
    pairs = ",".join(f"{p + 1}:{v!r}" for p, v in zip(positions.tolist(), vector[positions].tolist()))
    return f"{{{pairs}}}/{len(vector)}"


def parse_vector_literal(text: str) -> np.ndarray:
    return np.array(text.strip()[1:-1].split(","), dtype=np.float32)


class EmbeddingField(models.Field):
    description = "An embedding vector (pgvector `vector` on PostgreSQL, float32 BLOB elsewhere)"
    empty_strings_allowed = False

    def db_type(self, connection) -> str:
        if connection.vendor == "postgresql":
            return "vector"
        if connection.vendor == "sqlite":
            return "blob"
        return connection.data_types["BinaryField"] % {}

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        if connection.vendor == "postgresql":
            # A literal the column casts implicitly (Django's psycopg binds client-side).
            return vector_literal(value)
        return connection.Database.Binary(to_float32(value).tobytes())

    def from_db_value(self, value, expression, connection):
        return self.to_python(value)

    def to_python(self, value):
        if value is None or isinstance(value, np.ndarray):
            return value
        if isinstance(value, str):
            return parse_vector_literal(value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return np.frombuffer(bytes(value), dtype="<f4").astype(np.float32)
        if hasattr(value, "to_numpy"):  # pgvector.Vector, should an adapter be registered
            return value.to_numpy().astype(np.float32)
        return to_float32(value).astype(np.float32)

    def value_to_string(self, obj) -> str:
        value = self.value_from_object(obj)
        return "" if value is None else vector_literal(value)

    def formfield(self, **kwargs):
        return None  # vectors are never edited in a form (the admin shows none)
