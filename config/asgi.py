"""ASGI entry point: `uvicorn config.asgi:application`.

The server of choice: chat streams are async views and need an ASGI server to stay cheap.
With SERVE_STATIC (the default) the admin's and Swagger's assets are served by Django too;
behind a web server that serves /static/, turn it off.

**Why `POST /api/v1/chat/completions` takes a lean path.** It is the one hot endpoint (every
chat turn, every stream), an async view, and it authenticates by API key only: no session,
no CSRF (it is `csrf_exempt`), no `request.user`, no messages. Through Django's own handler
it would pay for the admin's middleware stack all the same: each of those sync middlewares
runs in a thread hop in an async request (15 of a turn's 17 hops, issue 11). So that one
path goes to `LeanHandler`: the same Django handler class (same request and
response objects, URL resolution, view, logging of 4xx/5xx, request-size limit, handler400/
404/500 and exception middleware, request signals with their receivers: database connections
closed at the end of the request, caches closed), with `settings.MIDDLEWARE` minus the
middlewares this endpoint never uses (`LEAN_SKIPPED`), the pure ones (headers, redirects) run
inline on the event loop instead of in a thread hop.
Authentication, rate limit, envelope errors (OpenAI `error`, WWW-Authenticate, Retry-After,
Allow) are the view's own (keys/access.py, config/exception_handler.py), hence the same.

**The key-authenticated API takes the same chain** (`key_api_paths()`): every exact path of
the URL conf under /api/ whose view is a DRF view authenticating by API key only — its
`authentication_classes` non-empty, each one of settings' DEFAULT_AUTHENTICATION_CLASSES and
none DRF's SessionAuthentication (so no session is read, and skipping CSRF opens nothing:
DRF views are `csrf_exempt` and only SessionAuthentication enforces CSRF). A searchTest paid
~1.5 ms of CPU in 13 thread hops for middlewares it never uses (docs/benchmarks.md, "API
layer"). These views are sync, so `OneHopHandler` runs that chain sync, the whole request in
one thread hop onto a pool's thread (as a WSGI server would), instead of Django's four hops
and a new thread per request. One header
differs, by design: a request carrying a session cookie gets no `Vary: Cookie` and, when that
session is stale, no `Set-Cookie` deleting it — the answer does not depend on cookies, and the
full stack would look the session up in the database for it.
Every other path — the admin, the OpenAPI schema and Swagger UI (/api/schema/, /api/docs/:
no key), an unknown /api path, a trailing slash — gets the full stack as before.
"""

import asyncio
import contextlib
import os
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import AsyncToSync, iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.asgi import get_asgi_application
from django.core.exceptions import MiddlewareNotUsed, RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.http import FileResponse
from django.urls import set_script_prefix
from django.utils.module_loading import import_string

from config.garbage_collection import tune_for_serving

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Served by LeanHandler on the event loop (exact paths: anything else, trailing slash
# included, is Django's): the async chat view.
LEAN_PATHS = frozenset({"/api/v1/chat/completions"})

# Middlewares the chat-completions endpoint never uses: sessions, CSRF (the view is exempt and
# sets no token), `request.user`, messages. Their process_response only acts when a view used
# them, so skipping them changes no response header.
LEAN_SKIPPED = frozenset(
    {
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    }
)

# Django's sync-style middlewares whose hooks are pure computation (headers, redirects, a
# user-agent check; no database, no I/O): run on the event loop, without a thread hop.
LEAN_INLINE = frozenset(
    {
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    }
)


class InlineMiddleware:
    """A `MiddlewareMixin` middleware's process_request/process_response called directly from
    the async chain (MiddlewareMixin would run each in a thread hop)."""

    sync_capable = False
    async_capable = True

    def __init__(self, middleware_class, get_response):
        self.middleware = middleware_class(get_response)
        self.get_response = get_response
        self.process_request = getattr(self.middleware, "process_request", None)
        self.process_response = getattr(self.middleware, "process_response", None)
        markcoroutinefunction(self)

    async def __call__(self, request):
        response = self.process_request(request) if self.process_request else None
        response = response or await self.get_response(request)
        if self.process_response:
            response = self.process_response(request, response)
        return response


class OneHopHandler(ASGIHandler):
    """The key-authenticated API's sync DRF views, served as a WSGI server serves them: the
    request's whole sync part — `request_started`, the lean middleware chain run sync, the view,
    rendering, the response's close with `request_finished` — in **one** call onto a thread of
    a fixed pool; only reading the body and sending the answer stay on the event loop.

    Through Django's ASGI handler a sync view costs four thread hops (the request signals, the
    view, rendering, close) and a new thread per request (its ThreadSensitiveContext): ~2 ms of
    CPU per searchTest, 0.9 ms more than this (docs/benchmarks.md, "One hop"). The pool's
    threads are reused, so their database connections are Django's per-thread ones, borrowed
    from the pool for each request and returned at its end, as before.

    A caller that is itself sync and awaits this through async_to_sync (a test, a management
    command) gets the request run in its own thread, as Django's handler does — and with it its
    database connection and transaction. No disconnect listener: a sync view cannot be cancelled
    midway anyway. A streaming response (no such view today) is sent, then closed, as Django
    does."""

    def __init__(self, threads: int = 64):
        BaseHandler.__init__(self)  # not ASGIHandler's: its chain is the async one
        self.load_middleware()
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="key-api")

    def load_middleware(self, is_async=False):
        """As BaseHandler.load_middleware(is_async=False), over `lean_middleware()`: each
        middleware called sync (an async-only one adapted, as Django does)."""
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler, handler_is_async = convert_exception_to_response(self._get_response), False
        for middleware_path in reversed(lean_middleware()):
            middleware_class = import_string(middleware_path)
            is_async = not getattr(middleware_class, "sync_capable", True)
            try:
                middleware = middleware_class(self.adapt_method_mode(is_async, handler, handler_is_async))
            except MiddlewareNotUsed:
                continue
            add_hooks(self, middleware, is_async=False)
            handler, handler_is_async = convert_exception_to_response(middleware), is_async
        self._middleware_chain = self.adapt_method_mode(False, handler, handler_is_async)

    async def __call__(self, scope, receive, send):
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        in_caller_thread = getattr(AsyncToSync.executors, "current", None) is not None
        respond = sync_to_async(self.respond, thread_sensitive=in_caller_thread,
                                executor=None if in_caller_thread else self.executor)
        response = await respond(scope, body_file)
        try:
            await self.send_response(response, send)
        finally:
            if response.streaming:
                await sync_to_async(response.close, thread_sensitive=in_caller_thread,
                                    executor=None if in_caller_thread else self.executor)()

    def respond(self, scope, body_file):
        """The request's sync part (WSGIHandler.__call__'s steps), in one thread."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        try:
            request, response = self.create_request(scope, body_file)
            if request is not None:
                response = self.get_response(request)
                response._handler_class = self.__class__
                if isinstance(response, FileResponse):
                    response.block_size = self.chunk_size
        finally:
            body_file.close()
        if not response.streaming:
            response.close()  # its content is in hand: request_finished now, in this thread
        return response


class LeanHandler(ASGIHandler):
    """Django's ASGI handler with the lean middleware chain.

    Where the turn's database work runs on the event loop (PostgreSQL: psycopg's async pool,
    chat/completions/turn_store.py `on_loop`), a request gets no executor thread of its own
    (Django's ThreadSensitiveContext) and no thread hop at all (`handle_on_loop`: the request
    signals' receivers run on the loop); the turn's rare sync steps run on the loop's
    executor. A thousand streams opened at once then start no thousand threads.
    Elsewhere (SQLite; a sync caller such as Django's test client) each request keeps its own
    thread, as in Django: one shared thread for every request's database steps serialised the
    waits of concurrent turns (PostgreSQL, c=32: 100 → 88 req/s; docs/benchmarks.md)."""

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] in LEAN_PATHS and on_loop():
            await self.handle_on_loop(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def handle_on_loop(self, scope, receive, send):
        """ASGIHandler.handle's steps — the body read, `request_started`, the response raced
        against the client's disconnect, the close with `request_finished` — with the request
        signals' receivers called right here instead of in a thread hop each.

        Django hops because its receivers (reset_queries, close_old_connections, close_caches,
        reset_urlconf) act on the calling thread's connections, caches and URL conf, and a
        request's are in its thread. A request served on the loop has its own on the loop
        thread: no Django connection (its statements run on the async pool, its rare sync
        steps on executor threads that give their connection back themselves), its caches and
        URL conf. The two hops cost 0.4 ms of CPU and 0.5 ms of latency per turn at c=1
        (docs/benchmarks.md, "Prepared statements and fewer liveness checks")."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        try:
            request, response = self.create_request(scope, body_file)
            if request is None:
                await self.send_response(response, send)
            else:
                response = await self.respond_unless_disconnected(request, receive, send)
        finally:
            body_file.close()
        if response is None:  # the client left first
            signals.request_finished.send(sender=self.__class__)
        else:
            response.close()  # request_finished

    async def respond_unless_disconnected(self, request, receive, send):
        """The response, sent; None when the client disconnected first (the view is then
        cancelled, as Django does)."""

        async def respond():
            response = await self.run_get_response(request)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:  # the client left while it was sent
                pass
            return response

        listening = asyncio.create_task(self.listen_for_disconnect(receive))
        responding = asyncio.create_task(respond())
        await asyncio.wait([listening, responding], return_when=asyncio.FIRST_COMPLETED)
        for task in (listening, responding):
            if task.done():
                with contextlib.suppress(RequestAborted):
                    task.result()
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return None if responding.cancelled() else responding.result()

    def load_middleware(self, is_async=False):
        """As BaseHandler.load_middleware, over `lean_middleware()`, always async."""
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response_async)
        for middleware_path in reversed(lean_middleware()):
            middleware_class = import_string(middleware_path)
            if middleware_path in LEAN_INLINE:
                middleware = InlineMiddleware(middleware_class, handler)
            elif getattr(middleware_class, "async_capable", False):
                middleware = middleware_class(handler)
            else:  # a sync-only middleware: around the async chain, in a thread, as Django does
                middleware = middleware_class(self.adapt_method_mode(False, handler, True))
            if middleware_path not in LEAN_INLINE:
                add_hooks(self, middleware, is_async=True)
            handler = convert_exception_to_response(
                middleware if iscoroutinefunction(middleware) else self.adapt_method_mode(True, middleware, False)
            )
        self._middleware_chain = handler


def add_hooks(handler: BaseHandler, middleware, *, is_async: bool) -> None:
    """A middleware's view and template-response hooks into `handler`'s lists, adapted to the
    chain's mode, as BaseHandler.load_middleware does; exception hooks always run sync (in a
    hop when the chain is async), as in Django, only when a view raised."""
    if hasattr(middleware, "process_view"):
        handler._view_middleware.insert(0, handler.adapt_method_mode(is_async, middleware.process_view))
    if hasattr(middleware, "process_template_response"):
        handler._template_response_middleware.append(
            handler.adapt_method_mode(is_async, middleware.process_template_response)
        )
    if hasattr(middleware, "process_exception"):
        handler._exception_middleware.append(handler.adapt_method_mode(False, middleware.process_exception))


def lean_middleware() -> list[str]:
    """settings.MIDDLEWARE, in its order, without LEAN_SKIPPED."""
    return [path for path in settings.MIDDLEWARE if path not in LEAN_SKIPPED]


def key_api_paths(urlconf=None) -> frozenset[str]:
    """The exact paths of the key-authenticated API: each path of the URL conf under /api/
    whose view is a DRF view with API-key authentication only (see the module's docstring).
    Paths with converters are left out (exact matching only; there are none today)."""
    from django.urls import URLPattern, URLResolver, get_resolver
    from django.urls.resolvers import RoutePattern
    from rest_framework.authentication import SessionAuthentication
    from rest_framework.settings import api_settings
    from rest_framework.views import APIView

    key_classes = tuple(api_settings.DEFAULT_AUTHENTICATION_CLASSES)

    def key_only(callback) -> bool:
        view = getattr(callback, "cls", None)
        if not (isinstance(view, type) and issubclass(view, APIView)):
            return False
        # as_view(authentication_classes=…) (the schema's and Swagger's views) overrides the class's.
        initkwargs = getattr(callback, "initkwargs", None) or {}
        classes = initkwargs.get("authentication_classes", view.authentication_classes)
        return bool(classes) and all(
            issubclass(c, key_classes) and not issubclass(c, SessionAuthentication) for c in classes
        )

    paths = set()

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = str(pattern.pattern)
            if not isinstance(pattern.pattern, RoutePattern) or "<" in route:  # a regex, a converter
                continue
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + route)
            elif isinstance(pattern, URLPattern) and key_only(pattern.callback):
                paths.add("/" + prefix + route)

    walk(get_resolver(urlconf).url_patterns, "")
    return frozenset(path for path in paths if path.startswith("/api/"))


class Router:
    """`LEAN_PATHS` to the lean handler, the key-authenticated API's paths to the one-hop
    handler, everything else (and lifespan) to Django's."""

    def __init__(self, full, lean, one_hop, key_paths=None):
        self.full = full
        self.lean = lean
        self.one_hop = one_hop
        self.key_paths = (key_api_paths() if key_paths is None else key_paths) - LEAN_PATHS

    @property
    def paths(self) -> frozenset[str]:
        """Every path that skips Django's full stack."""
        return LEAN_PATHS | self.key_paths

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] in LEAN_PATHS:
            await self.lean(scope, receive, send)
        elif scope["type"] == "http" and scope["path"] in self.key_paths:
            await self.one_hop(scope, receive, send)
        else:
            await self.full(scope, receive, send)


full_application = get_asgi_application()
from chat.completions.turn_store import on_loop  # noqa: E402 (its models need django.setup() first)
if settings.SERVE_STATIC:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    full_application = ASGIStaticFilesHandler(full_application)

application = Router(full_application, LeanHandler(), OneHopHandler())

# Last, once everything the process serves with is loaded (config/garbage_collection.py).
tune_for_serving(settings.GC_GEN0_THRESHOLD)
