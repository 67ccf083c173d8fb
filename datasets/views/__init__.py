"""The knowledge-base endpoints (global key), one ViewSet per resource; paths in datasets/urls.py."""
