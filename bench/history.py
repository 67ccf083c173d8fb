"""How fast the chat-history endpoints and the conversation admin are on a big database.

    .venv/bin/python -m tests.with_postgres .venv/bin/python bench/history.py [--requests 400]

PostgreSQL only (DATABASE_URL, as tests.with_postgres provides). The script creates its own
database `fastgpt_bench_history` on that server (dropped and re-created on each run; dropped at
the end unless --keep), runs `manage.py migrate` on it, and fills it in bulk with SQL
(`INSERT … SELECT generate_series`, no ORM loop):

  * 100,000 chats in 10 apps of one team: a "big" app holds 50,000 of them, the other nine
    share the rest; customUid = one of 1,000 end users per app; 10 % of chats from the web
    UI (source `online`), 1 in 500 pinned; update times spread over 90 days;
  * 1,000,000 records: one chat of the big app has 10,000 (5,000 turns); the other 990,000
    (495,000 turns) are spread over the 99,999 other chats, turns of all chats interleaved
    in id order, as live traffic writes them. Every AI record carries run data as chat
    completions store it (a dataset search with 3 quotes, then the chat node).

Then VACUUM ANALYZE, and each case is timed over --requests calls (after --warmup calls) with
Django's test Client, in process: the figures are the server's own time (URL routing, key
check, validation, queries, serialisation, rendering) without HTTP or network. Parameters
vary per call (end users, offsets, cursors), so no case is one cached row.

Cases: getHistories of the big app (first page; with a customUid; a deep offset);
getPaginationRecords on the 10,000-record chat with an offset far in and with a cursor
(prevId); the admin conversation list (first page; filtered by app; a page far in) and one
transcript page. --explain prints PostgreSQL's plans of the main queries.
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DB = "fastgpt_bench_history"
TARGET_P50_MS, TARGET_P99_MS = 20.0, 60.0
INFORMATIONAL = ("admin transcript",)  # measured for the record; not a target case


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chats", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=1_000_000, help="records in all")
    parser.add_argument("--long-chat", type=int, default=10_000, help="records of the long chat")
    parser.add_argument("--requests", type=int, default=400, help="timed calls per case")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--only", default="", help="run only the cases whose name contains this")
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    return parser.parse_args()


# --- database -------------------------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def recreate_database(url: str) -> str:
    """Drop and create the benchmark database next to the one in ``url``; its URL."""
    import psycopg

    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    return with_database(url, BENCH_DB)


def drop_database(url: str) -> None:
    import psycopg

    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')


def _libpq(url: str) -> str:
    # django-environ accepts postgres:// and postgresql://; libpq wants the latter.
    return url.replace("postgres://", "postgresql://", 1)


def setup_django(url: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": url,
            "API_KEY_RATE": "",  # measure the endpoints, not the rate limiter
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# --- data -----------------------------------------------------------------------------------

RUN_DATA = """[
 {"id": "n1", "nodeId": "datasetSearch", "moduleType": "datasetSearchNode", "moduleName": "Dataset search",
  "runningTime": 0.04, "quoteList": [
   {"id": "q1", "q": "How long is the refund window?", "a": "Thirty days from delivery.", "datasetId": "d1",
    "collectionId": "c1", "sourceName": "refunds.md", "sourceId": "s1", "score": 0.82},
   {"id": "q2", "q": "Are sale items refundable?", "a": "Yes, within fourteen days.", "datasetId": "d1",
    "collectionId": "c1", "sourceName": "refunds.md", "sourceId": "s1", "score": 0.77},
   {"id": "q3", "q": "Who pays for return shipping?", "a": "We do, with the prepaid label.", "datasetId": "d1",
    "collectionId": "c2", "sourceName": "shipping.md", "sourceId": "s2", "score": 0.71}]},
 {"id": "n2", "nodeId": "chatNode", "moduleType": "chatNode", "moduleName": "AI Chat", "runningTime": 1.31,
  "model": "gpt-4o-mini", "tokens": 512, "inputTokens": 430, "outputTokens": 82, "query": "…",
  "historyPreview": [{"obj": "Human", "value": "…"}, {"obj": "AI", "value": "…"}]}
]"""


def generate(args) -> dict:
    """Fill the database; returns the ids the cases need."""
    from django.contrib.auth.models import User
    from django.db import connection

    from chat.models import App
    from keys.models import Team
    from keys.services import create_api_key

    team = Team.objects.create(name="bench")
    other = Team.objects.create(name="bench-other")
    apps = [App.objects.create(team=team, name=f"app {n}") for n in range(10)]
    App.objects.create(team=other, name="theirs")
    _, key = create_api_key(team=team, name="bench key")
    User.objects.create_superuser("bench", "bench@example.com", "bench")

    big, rest = apps[0].pk, [a.pk for a in apps[1:]]
    half = args.chats // 2
    long_turns = args.long_chat // 2
    turns = args.items // 2
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        # Chat n (1..chats): the first half in the big app, the rest round-robin in the others.
        cursor.execute(
            """
            INSERT INTO chat_chat (chat_id, title, custom_title, top, source, source_name, custom_uid,
                                   variables, metadata, created_at, updated_at, app_id, team_id)
            SELECT 'chat-' || n, 'Question ' || n || ' about the refund policy', '', n %% 500 = 0,
                   CASE WHEN n %% 10 = 0 THEN 'online' ELSE 'api' END, 'bench key', 'user-' || (n %% 1000),
                   '{"name": "Ann"}'::jsonb, '{}'::jsonb, t - interval '1 hour', t, app, %(team)s
            FROM (
                SELECT n, now() - random() * interval '90 days' AS t,
                       CASE WHEN n <= %(half)s THEN %(big)s ELSE (%(rest)s::text[])[1 + n %% 9] END AS app
                FROM generate_series(1, %(chats)s) AS n
            ) AS rows
            ORDER BY n
            """,
            {"team": team.pk, "half": half, "big": big, "rest": rest, "chats": args.chats},
        )
        cursor.execute("SELECT min(id) FROM chat_chat")
        base = cursor.fetchone()[0]  # chat n has id base + n - 1; chat 1 is the long one
        cursor.execute("UPDATE chat_chat SET updated_at = now() WHERE id = %s", [base])
        # Turn t: every (turns / long_turns)-th turn belongs to the long chat, the others go
        # round-robin over chats 2..chats. Human then AI, ids in turn order.
        every = max(1, turns // long_turns)
        cursor.execute(
            """
            INSERT INTO chat_chatitem (data_id, obj, value, response_data, error_msg, interrupted,
                                       user_good_feedback, user_bad_feedback, duration_seconds, time, chat_id)
            SELECT CASE WHEN r = 0 THEN 'h' ELSE 'a' END || t,
                   CASE WHEN r = 0 THEN 'Human' ELSE 'AI' END,
                   jsonb_build_array(jsonb_build_object('type', 'text', 'text', jsonb_build_object('content',
                       CASE WHEN r = 0 THEN 'Question ' || t || ': how long is the refund window for my order?'
                            ELSE 'Answer ' || t || ': ' || repeat('You can return it within thirty days. ', 6) END))),
                   CASE WHEN r = 0 THEN '[]'::jsonb ELSE %(run)s::jsonb END,
                   '', false,
                   CASE WHEN r = 1 AND t %% 17 = 0 THEN 'yes' END,
                   CASE WHEN r = 1 AND t %% 29 = 0 THEN 'wrong' END,
                   CASE WHEN r = 1 THEN 1.4 END,
                   now() - (%(turns)s - t) * interval '5 seconds',
                   %(base)s + CASE WHEN t %% %(every)s = 0 AND t / %(every)s < %(long_turns)s THEN 0
                                   ELSE 1 + t %% (%(chats)s - 1) END
            FROM generate_series(0, %(turns)s - 1) AS t CROSS JOIN (VALUES (0), (1)) AS v(r)
            ORDER BY t, r
            """,
            {
                "run": RUN_DATA, "turns": turns, "base": base, "every": every,
                "long_turns": long_turns, "chats": args.chats,
            },
        )
        cursor.execute("VACUUM ANALYZE chat_chat")
        cursor.execute("VACUUM ANALYZE chat_chatitem")
        cursor.execute("SELECT count(*) FROM chat_chat")
        chats = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM chat_chatitem")
        items = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM chat_chatitem WHERE chat_id = %s", [base])
        long_items = cursor.fetchone()[0]
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        size = cursor.fetchone()[0]
    print(
        f"data: {chats:,} chats, {items:,} records ({long_items:,} in the long chat), {size}, "
        f"generated in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return {"key": key, "big_app": big, "long_chat_pk": base, "long_chat": "chat-1"}


# --- cases ----------------------------------------------------------------------------------


def measure(name: str, call, *, requests: int, warmup: int) -> dict:
    """Time ``call(i)`` (which returns a response) ``requests`` times: wall-clock p50/p99 in ms,
    and the median CPU time this process spent per call (the server's Python work; unlike
    wall-clock time it does not grow when other programs compete for the cores)."""
    for i in range(warmup):
        check(name, call(i))
    times, cpu = [], []
    for i in range(requests):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = call(i)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        check(name, response)
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    return {
        "case": name, "n": requests, "p50": cuts[49], "p99": cuts[98],
        "mean": statistics.fmean(times), "cpu": statistics.median(cpu),
    }


def check(name: str, response) -> None:
    if response.status_code != 200:
        raise SystemExit(f"{name}: HTTP {response.status_code}: {response.content[:300]!r}")


def cases(ids: dict, args) -> list[tuple[str, object]]:
    from django.contrib.auth.models import User
    from django.test import Client

    from chat.models import ChatItem

    rng = random.Random(7)
    api = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {ids['key']}")
    admin = Client(HTTP_HOST="localhost")
    admin.force_login(User.objects.get(username="bench"))
    big = ids["big_app"]
    long_chat = ChatItem.objects.filter(chat_id=ids["long_chat_pk"]).order_by("id")
    long_ids = list(long_chat.values_list("data_id", flat=True))
    n_long = len(long_ids)
    admin_pages = max(2, min(200, args.chats // 50))  # pages of the admin list to pick from

    def post(path, body):
        return api.post(path, body, content_type="application/json")

    def histories(**body):
        return post("/api/core/chat/history/getHistories", {"appId": big, "pageSize": 20, **body})

    def records(**body):
        body = {"appId": big, "chatId": ids["long_chat"], "pageSize": 20, **body}
        return post("/api/core/chat/getPaginationRecords", body)

    far_in = (n_long - 1000, n_long - 20)  # offsets counted back from the newest record
    return [
        ("getHistories, first page (20)", lambda i: histories(offset=0)),
        ("getHistories, customUid filter", lambda i: histories(customUid=f"user-{rng.randrange(1000)}")),
        ("getHistories, offset 1,000-5,000", lambda i: histories(offset=rng.randrange(1000, 5000))),
        (
            f"getPaginationRecords, {n_long:,}-record chat, offset {far_in[0]:,}-{far_in[1]:,}",
            lambda i: records(offset=rng.randrange(*far_in)),
        ),
        (
            "getPaginationRecords, cursor (prevId anywhere)",
            lambda i: records(prevId=long_ids[rng.randrange(20, n_long)]),
        ),
        ("admin list, first page (50)", lambda i: admin.get("/admin/chat/chat/")),
        ("admin list, filtered by app", lambda i: admin.get(f"/admin/chat/chat/?app__id__exact={big}")),
        (
            f"admin list, a page among the first {admin_pages}",
            lambda i: admin.get(f"/admin/chat/chat/?p={rng.randrange(1, admin_pages)}"),
        ),
        (
            "admin transcript page (50 records)",
            lambda i: admin.get(
                f"/admin/chat/chat/{ids['long_chat_pk']}/change/?page={rng.randrange(1, max(2, n_long // 50))}"
            ),
        ),
    ]


def explain(ids: dict) -> None:
    """PostgreSQL's plans of the queries behind the cases (run once each)."""
    from django.db import connection

    from chat.admin import ChatAdmin
    from chat.models import App, Chat, ChatItem
    from chat.history.selectors import HISTORY_COLUMNS, HistoryFilters, histories
    from django.contrib import admin as django_admin

    app = App.objects.get(pk=ids["big_app"])
    chat = Chat.objects.get(pk=ids["long_chat_pk"])
    items = ChatItem.objects.filter(chat=chat)
    deep = max(0, items.count() - 100)
    admin_rows = (
        ChatAdmin(Chat, django_admin.site).get_queryset(None)
        .select_related("team", "app").order_by("-updated_at", "-pk")
    )
    one_user = HistoryFilters(custom_uid="user-7")
    queries = {
        "getHistories page": histories(app=app).only(*HISTORY_COLUMNS)[:20],
        "getHistories count": None,
        "customUid page": histories(app=app, filters=one_user).only(*HISTORY_COLUMNS)[:20],
        f"records, offset {deep:,}": ChatItem.objects.filter(
            id__in=items.order_by("-id").values("id")[deep : deep + 20]
        ).order_by("id"),
        "admin list page": admin_rows[:50],
        "admin list, ids of a page at offset 5,000": admin_rows.values_list("pk", flat=True)[5000:5050],
    }
    for name, queryset in queries.items():
        if queryset is None:
            sql, params = "SELECT count(*) FROM chat_chat WHERE app_id = %s", [app.pk]
        else:
            sql, params = queryset.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
            plan = "\n".join(f"    {row[0]}" for row in cursor.fetchall())
        print(f"\n--- {name}\n{plan}")


def main() -> int:
    args = parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        print("DATABASE_URL must be PostgreSQL: run under `python -m tests.with_postgres`.", file=sys.stderr)
        return 2
    bench_url = recreate_database(url)
    try:
        setup_django(bench_url)
        ids = generate(args)
        results = []
        for name, call in cases(ids, args):
            if args.only not in name:
                continue
            result = measure(name, call, requests=args.requests, warmup=args.warmup)
            results.append(result)
            print(
                f"  {name}: p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms, "
                f"CPU {result['cpu']:.1f} ms; load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        if args.explain:
            explain(ids)
        target = f"target (p50 ≤ {TARGET_P50_MS:g}, p99 ≤ {TARGET_P99_MS:g})"
        print(f"\n| case | n | p50 ms | p99 ms | mean ms | CPU ms (p50) | {target} |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for r in results:
            met = r["p50"] <= TARGET_P50_MS and r["p99"] <= TARGET_P99_MS
            verdict = "—" if r["case"].startswith(INFORMATIONAL) else "met" if met else "MISSED"
            figures = f"{r['p50']:.1f} | {r['p99']:.1f} | {r['mean']:.1f} | {r['cpu']:.1f}"
            print(f"| {r['case']} | {r['n']} | {figures} | {verdict} |")
        return 0
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    sys.exit(main())
