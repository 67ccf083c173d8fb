"""ASGI entry point: `uvicorn config.asgi:application`.

The server of choice: chat streams are async views and need an ASGI server to stay cheap.
With SERVE_STATIC (the default) the admin's and Swagger's assets are served by Django too;
behind a web server that serves /static/, turn it off.
"""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_asgi_application()

if settings.SERVE_STATIC:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    application = ASGIStaticFilesHandler(application)
