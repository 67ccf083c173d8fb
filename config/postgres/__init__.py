"""Django's PostgreSQL backend whose connection pool checks connections with config/db_pool.py."""
