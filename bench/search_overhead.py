"""Where a searchTest request's CPU goes outside the search: in process, on a small dataset so
the search itself is small (the API layer is the same at any size).

    .venv/bin/python bench/search_overhead.py [--chunks 300] [--requests 400] [--rounds 4] [--cprofile 25]
                                              [--corpus synthetic|prose]
    .venv/bin/python -m tests.with_postgres .venv/bin/python bench/search_overhead.py   # PostgreSQL

A fresh database (a temporary SQLite file, or DATABASE_URL), CHUNKS synthetic chunks
(bench/search_corpus.py), then embedding-mode searchTest requests sent straight to Django's
ASGI application in this process (an ASGI scope, no socket), one at a time. Variants,
interleaved round by round, each request's CPU (time.process_time: every thread):

  * as deployed: `config.asgi.application` (the key-authenticated /api/ in one thread hop);
  * Django's full handler: `config.asgi.full_application` (settings.MIDDLEWARE, every hop);
  * no middleware: an ASGIHandler built with MIDDLEWARE = [] (what no middleware costs);
  * the view called directly, in this thread (DRF: authentication, throttle, parsing,
    validation, the service, the output, rendering — no ASGI, no middleware, no hop);
  * the service alone (`search_test`: the search and the usage update);
  * and the pieces of the view alone: input validation, the output's dict, JSON rendering.

Also, per request of each ASGI variant, every sync_to_async hop by the function it runs
(bench/turn_counts.py's hooks). With --cprofile N: the top N functions by cumulative CPU of the
view called directly (cProfile; inflated by its own cost — read as shares).
"""

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from asgi_calls import post  # noqa: E402 (after the path insert)

PATH = "/api/core/dataset/searchTest"


async def request(app, key: str, body: bytes) -> bytes:
    """One searchTest through the ASGI app; its body (raises unless 200)."""
    return await post(app, PATH, key, body)


def cpu_per_call(function, count: int) -> float:
    """ms of CPU per call of a sync function (this thread; nothing else runs)."""
    started = time.process_time()
    for _ in range(count):
        function()
    return (time.process_time() - started) / count * 1000


async def run(args, loaded) -> None:
    from django.conf import settings
    from django.core.handlers.asgi import ASGIHandler
    from config.renderers import JSONRenderer
    from rest_framework.test import APIRequestFactory

    import config.asgi
    from bench.turn_counts import Hooks
    from datasets.serializers import search as search_serializers
    from datasets.serializers.search import SearchTestIn, search_options
    from datasets.services.search import search_test
    from datasets.urls import urlpatterns
    from keys.models import ApiKey

    key = loaded.key
    body_dict = {"datasetId": loaded.dataset.id, "text": "object value", "searchMode": "embedding"}
    body = json.dumps(body_dict).encode()

    middleware = settings.MIDDLEWARE
    settings.MIDDLEWARE = []
    bare = ASGIHandler()
    settings.MIDDLEWARE = middleware
    variants = {"as deployed": config.asgi.application, "Django's full handler": config.asgi.full_application,
                "no middleware": bare}
    hooks = Hooks()
    hooks.install()
    for app in variants.values():
        for _ in range(30):
            await request(app, key, body)
    hits = len(json.loads(await request(config.asgi.application, key, body))["data"]["list"])

    figures = {name: Hooks.new_figure() for name in variants}
    per_round = args.requests // args.rounds
    for _ in range(args.rounds):
        for name, app in variants.items():
            hooks.reset()
            hooks.on = True
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for _ in range(per_round):
                await request(app, key, body)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            hooks.on = False
            hooks.add_round(figures[name], cpu=cpu, wall=wall, n=per_round)

    # The view and its pieces, in this thread (sync: run in a worker thread of our own).
    view = next(p.callback for p in urlpatterns if str(p.pattern) == "core/dataset/searchTest")
    factory = APIRequestFactory()

    def call_view():
        response = view(factory.post(PATH, body, content_type="application/json",
                                     HTTP_AUTHORIZATION=f"Bearer {key}"))
        response.render()
        assert response.status_code == 200, response.content

    def service():
        data = SearchTestIn(data=body_dict)
        data.is_valid(raise_exception=True)
        return search_test(key=api_key, dataset_ids=data.validated_data["dataset_ids"],
                           text=data.validated_data["text"], options=search_options(data.validated_data))


    api_key = result = None

    def validate():
        serializer = SearchTestIn(data=body_dict)
        serializer.is_valid(raise_exception=True)

    def output():
        return search_serializers.search_test_out(result)

    def output_serializer():
        return search_serializers.SearchTestOut(result).data

    def render():
        return JSONRenderer().render({"code": 200, "statusText": "", "message": "", "data": output()})

    def pieces():
        nonlocal api_key, result
        api_key = ApiKey.objects.get(team=loaded.team)
        result = service()
        n = args.requests
        rows = {"the view called directly (DRF + service + output + render)": cpu_per_call(call_view, n),
                "the service alone (search + usage)": cpu_per_call(lambda: search_test(
                    key=api_key, dataset_ids=[loaded.dataset.id], text="object value",
                    options=search_options({**SearchTestIn(data=body_dict).run_validation(body_dict)})), n),
                "input validation (SearchTestIn)": cpu_per_call(validate, n),
                "output: search_test_out() (plain dicts)": cpu_per_call(output, n),
                "output: SearchTestOut(result).data (DRF serializer)": cpu_per_call(output_serializer, n),
                "output + JSON rendering of the envelope": cpu_per_call(render, n)}
        profile_rows = []
        if args.cprofile:
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            for _ in range(n):
                call_view()
            profiler.disable()
            stats = pstats.Stats(profiler, stream=io.StringIO())
            for (file, line, func), (cc, nc, tt, ct, callers) in stats.stats.items():
                profile_rows.append((ct / n * 1000, tt / n * 1000, nc / n,
                                     f"{Path(file).parent.name}/{Path(file).name}:{line} {func}"))
            profile_rows = sorted(profile_rows, reverse=True)[:args.cprofile]
        return rows, profile_rows

    from asgiref.sync import sync_to_async

    rows, profile_rows = await sync_to_async(pieces, thread_sensitive=True)()

    print(f"\n{os.environ.get('DATABASE_URL', '').split(':')[0]}, {args.chunks} chunks, {hits} hits per answer, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| variant | requests | CPU ms/request | wall ms/request | hops/request |")
    print("|---|--:|--:|--:|--:|")
    for name, f in figures.items():
        n = f["n"]
        print(f"| {name} | {n} | {f['cpu'] / n * 1000:.2f} | {f['wall'] / n * 1000:.2f} | "
              f"{sum(f['hops'].values()) / n:.1f} |")
    print("\n| piece (in one thread) | CPU ms/call |\n|---|--:|")
    for name, ms in rows.items():
        print(f"| {name} | {ms:.3f} |")
    for name, f in figures.items():
        n = f["n"]
        print(f"\n{name}: hops per request, by the function run in the thread (its own CPU in the thread)")
        for func, count in f["hops"].most_common():
            print(f"  {count / n:4.1f} x {func}  ({f['hop_cpu'][func] / n * 1000:.3f} ms)")
    if profile_rows:
        print("\ncProfile of the view called directly (cumulative ms / own ms / calls per request):")
        for ct, tt, calls, where in profile_rows:
            print(f"  {ct:7.3f}  {tt:7.3f}  {calls:6.1f}  {where}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=300)
    parser.add_argument("--requests", type=int, default=400, help="per variant")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--cprofile", type=int, default=0, help="print the top N functions of the view")
    parser.add_argument("--corpus", choices=("synthetic", "prose"), default="synthetic",
                        help="the chunks: synthetic words, or real prose (bench/prose_corpus.py)")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        if not os.environ.get("DATABASE_URL"):
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-search-overhead-"))
            os.environ["DATABASE_URL"] = f"sqlite:///{folder}/bench.sqlite3"
        os.environ.update({"DJANGO_SETTINGS_MODULE": "config.settings", "API_KEY_RATE": "", "LOG_LEVEL": "WARNING",
                           "DEBUG": "false"})
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0, interactive=False)
        from django.db import connection

        from bench import search_corpus as corpus

        loaded = corpus.load_corpus(chunks=args.chunks, corpus=args.corpus)
        connection.close()
        try:
            import uvloop
            runner = uvloop.run
        except ImportError:
            runner = asyncio.run
        runner(run(args, loaded))
    return 0


if __name__ == "__main__":
    sys.exit(main())
