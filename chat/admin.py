"""Admin for chat apps and conversations.

The conversation list must stay fast with millions of chats, so it never counts the whole
table (an estimate, or a count capped at COUNT_CAP), filters only on indexed columns, and
counts messages with a correlated subquery that runs for the rows on the page only. A
conversation opens as a read-only transcript, not a form; conversations can be exported as
JSON Lines or deleted, never edited or added by hand.
"""

import json
from datetime import timedelta

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.forms.models import BaseInlineFormSet
from django.http import Http404, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html_join

from chat.app_datasets import link_problems, linkable_datasets
from chat.completions.quote_prompt import DEFAULT_QUOTE_PROMPT, DEFAULT_QUOTE_TEMPLATE
from chat.models import App, AppDataset, AppDatasetSearch, Chat, ChatItem, ChatRole
from chat.run_records import node_lines, run_summary
from chat.value_parts import read_parts
from datasets.models import Dataset, DatasetType
from providers import registry

TRANSCRIPT_TEMPLATE = "admin/chat/chat/transcript.html"
TRANSCRIPT_PAGE_SIZE = 50  # records per transcript page: a 10,000-record chat stays readable
QUOTE_SNIPPET_CHARS = 300  # of each quote's text under an answer in the transcript
COUNT_CAP = 10_000


class AppAdminForm(forms.ModelForm):
    """The model is one of the declared chat models (empty: the default); the team is fixed
    once the app exists (its keys and chats belong to that team)."""

    model = forms.ChoiceField(required=False, help_text="A declared chat model; the default when left so.")

    class Meta:
        model = App
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        default = registry.default_model("llm").name
        declared = [name for name, m in registry.all_models().items() if m.type == "llm"]
        self.fields["model"].choices = [("", f"default ({default})"), *[(name, name) for name in declared]]

    def clean_team(self):
        team = self.cleaned_data.get("team")
        if not self.instance._state.adding and team is not None and team.pk != self.instance.team_id:
            raise forms.ValidationError(
                "An app cannot move to another team: its API keys and chats belong to this one."
            )
        return team


# --- the datasets an app answers from ---------------------------------------------------------


def _edited_app(request) -> App | None:
    """The app the change page is for (None on the add page)."""
    object_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
    return App.objects.filter(pk=object_id).first() if object_id else None


class AppDatasetFormSet(BaseInlineFormSet):
    """The linked datasets, checked together: all of the app's team, none a folder, one vector
    model (chat/app_datasets.py). A dataset of another team is refused, never saved."""

    def clean(self):
        super().clean()
        if any(self.errors) or self.instance.team_id is None:
            return  # the row errors (or the app's own form) are shown first
        datasets = [
            form.cleaned_data["dataset"]
            for form in self.forms
            if form.cleaned_data.get("dataset") and not form.cleaned_data.get("DELETE")
        ]
        problems = link_problems(team_id=self.instance.team_id, datasets=datasets)
        if problems:
            raise ValidationError(problems)


class AppDatasetInline(admin.TabularInline):
    """Datasets the app searches before each answer. On an existing app only its team's
    datasets are offered; on a new one every dataset is (named with its team) and the choice
    is checked against the team chosen for the app."""

    model = AppDataset
    formset = AppDatasetFormSet
    extra = 1
    fields = ["dataset", "created_at"]
    readonly_fields = ["created_at"]
    verbose_name_plural = "linked datasets (searched before each answer; quotes go into the prompt)"

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "dataset":
            app = _edited_app(request)
            datasets = linkable_datasets(app.team_id) if app else Dataset.objects.filter(type=DatasetType.DATASET)
            kwargs["queryset"] = datasets.select_related("team").order_by("team__name", "name")
            field = super().formfield_for_foreignkey(db_field, request, **kwargs)
            field.label_from_instance = lambda d: f"{d.team.name} / {d.name} ({d.vector_model})"
            return field
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


def _model_choices(model_type: str, empty_label: str):
    """A select's choices: the declared models of a type (read when the form is drawn, so a
    model declared since shows up)."""

    def choices():
        names = sorted(m.name for m in registry.all_models().values() if m.type == model_type)
        return [("", empty_label)] + [(name, name) for name in names]

    return choices


class AppDatasetSearchForm(forms.ModelForm):
    rerank_model = forms.ChoiceField(required=False, choices=_model_choices("rerank", "(first declared rerank model)"))
    extension_model = forms.ChoiceField(required=False, choices=_model_choices("llm", "(the default language model)"))

    class Meta:
        model = AppDatasetSearch
        fields = "__all__"
        widgets = {"extension_background": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("rerank_model", "extension_model"):
            stored = getattr(self.instance, name, "")
            field = self.fields[name]
            if stored and stored not in dict(field.choices):  # no longer declared: keep it visible
                field.choices = [*field.choices, (stored, f"{stored} (not configured)")]
        self.fields["quote_template"].widget.attrs["placeholder"] = DEFAULT_QUOTE_TEMPLATE
        self.fields["quote_prompt"].widget.attrs["placeholder"] = DEFAULT_QUOTE_PROMPT


class AppDatasetSearchInline(admin.StackedInline):
    """How the app searches its datasets and quotes them (defaults when left alone)."""

    model = AppDatasetSearch
    form = AppDatasetSearchForm
    can_delete = False
    max_num = 1
    verbose_name_plural = "dataset search settings"
    fieldsets = [
        (None, {"fields": [("search_mode", "similarity"), ("limit", "top_k"), "embedding_weight"]}),
        ("Rerank", {"fields": [("using_rerank", "rerank_model", "rerank_weight")]}),
        ("Query extension", {"fields": [("using_extension", "extension_model"), "extension_background"]}),
        ("Quote template and prompt (empty: FastGPT's defaults, shown greyed)", {
            "classes": ["collapse"], "fields": ["quote_template", "quote_prompt"],
        }),
    ]


@admin.register(App)
class AppAdmin(admin.ModelAdmin):
    form = AppAdminForm
    list_display = ["name", "id", "team", "model", "updated_at"]
    list_filter = ["team"]
    list_select_related = ["team"]
    search_fields = ["name", "id"]
    readonly_fields = ["id", "created_at", "updated_at"]
    inlines = [AppDatasetInline, AppDatasetSearchInline]


class CappedCountPaginator(Paginator):
    """A paginator for big tables: it never counts millions of rows, and a page far in
    costs little more than the first.

    The count: unfiltered on PostgreSQL, the planner's row estimate (pg_class.reltuples, kept
    fresh by autovacuum); otherwise an exact count that stops at COUNT_CAP, so a filter
    matching more shows COUNT_CAP rows' worth of pages.
    """

    def page(self, number):
        """The page's ids first (skipping `offset` rows of the index alone), then those rows
        with their joins and per-row subqueries: a plain OFFSET would compute both for every
        row it skips."""
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        ids = list(self.object_list.values_list("pk", flat=True)[bottom : bottom + self.per_page])
        return self._get_page(self.object_list.filter(pk__in=ids), number, self)

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        if connection.vendor == "postgresql" and not rows.query.where:
            estimate = table_row_estimate(rows.model._meta.db_table)
            if estimate > COUNT_CAP:
                return estimate
        # Only the ids, so the per-row message count is not computed for rows being counted.
        return rows.order_by().values("pk")[: COUNT_CAP + 1].count()


def table_row_estimate(table: str) -> int:
    """PostgreSQL's estimate of a table's rows (-1 or 0 before the first ANALYZE)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
        row = cursor.fetchone()
    return int(row[0]) if row else -1


class UpdatedWithinFilter(admin.SimpleListFilter):
    """A few fixed ranges on `updated_at` (indexed). Django's date_hierarchy would run a
    DISTINCT-dates query over the whole table on every page."""

    title = "updated"
    parameter_name = "updated"
    RANGES = {"1d": ("today", 1), "7d": ("past 7 days", 7), "30d": ("past 30 days", 30)}
    OLDER = "older"

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in self.RANGES.items()] + [
            (self.OLDER, "more than 30 days ago")
        ]

    def queryset(self, request, queryset):
        value = self.value()
        now = timezone.now()
        if value in self.RANGES:
            return queryset.filter(updated_at__gte=now - timedelta(days=self.RANGES[value][1]))
        if value == self.OLDER:
            return queryset.filter(updated_at__lt=now - timedelta(days=30))
        return queryset


class ChatChangeList(ChangeList):
    """The conversation list: reads only the columns it shows, and draws its rows itself.

    Django's generic rows (a lookup, a formatter and a checkbox widget rendered per cell) and
    even a template loop cost more than all of the page's queries; one format string per row
    is a tenth of that. The template (admin/chat/chat/change_list.html) draws the header.
    """

    LIST_COLUMNS = (
        "chat_id", "title", "custom_title", "custom_uid", "source", "source_name", "updated_at",
        "team__name", "app__name",
    )
    ROW = (
        '<tr><td class="action-checkbox"><input type="checkbox" name="_selected_action" value="{}"'
        ' class="action-select" aria-label="Select this conversation for an action"></td>'
        '<th class="field-title"><a href="{}/change/">{}</a></th><td class="field-team">{}</td>'
        '<td class="field-app">{}</td><td class="field-custom_uid">{}</td><td class="field-source">{}</td>'
        '<td class="field-source_name">{}</td><td class="field-messages">{}</td>'
        '<td class="field-updated">{}</td></tr>'
    )

    def get_queryset(self, request, exclude_parameters=None):
        return super().get_queryset(request, exclude_parameters).only(*self.LIST_COLUMNS)

    def rows_html(self) -> str:
        """The page's rows, every value escaped."""
        return format_html_join(
            "\n",
            self.ROW,
            (
                (
                    chat.pk, chat.pk, chat.custom_title or chat.title or chat.chat_id,
                    chat.team.name, chat.app.name, chat.custom_uid or "-", chat.source,
                    chat.source_name or "-", chat.message_count,
                    timezone.localtime(chat.updated_at).strftime("%Y-%m-%d %H:%M:%S"),
                )
                for chat in self.result_list
            ),
        )


def message_count_subquery() -> Coalesce:
    """COUNT of a chat's records, correlated to the outer row: evaluated only for the rows
    the page shows (served by the (chat, id) index), never a GROUP BY over every chat."""
    counts = (
        ChatItem.objects.filter(chat=OuterRef("pk"))
        .order_by()
        .values("chat")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))


@admin.register(Chat)
class ChatAdmin(admin.ModelAdmin):
    # The columns, and their labels; ChatChangeList.rows_html draws the cells (see why there).
    # Only `updated` sorts: the one order an index serves on millions of chats.
    list_display = [
        "shown_title", "team_name", "app_name", "uid", "source_shown", "key_name", "messages", "updated",
    ]
    list_filter = ["team", "app", "source", UpdatedWithinFilter]
    list_select_related = ["team", "app"]
    list_per_page = 50
    show_full_result_count = False
    paginator = CappedCountPaginator
    search_fields = ["chat_id"]  # shows the box; the search itself is get_search_results
    search_help_text = "An exact chat id or customUid, else words of the title."
    ordering = ["-updated_at"]
    actions = ["export_jsonl"]

    # --- list --------------------------------------------------------------------------------

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(message_count=message_count_subquery())

    def get_search_results(self, request, queryset, search_term):
        """Exact chat id or customUid first (indexed); only when neither matches, a title
        search (a scan, so narrow it with the team/app filters on big installations)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        exact = queryset.filter(Q(chat_id=term) | Q(custom_uid=term))
        if exact.exists():
            return exact, False
        return queryset.filter(Q(title__icontains=term) | Q(custom_title__icontains=term)), False

    def get_changelist(self, request, **kwargs):
        return ChatChangeList

    def changelist_view(self, request, extra_context=None):
        labels = [getattr(self, name).short_description for name in self.list_display]
        return super().changelist_view(request, {"chat_columns": labels, **(extra_context or {})})

    @admin.display(description="title")
    def shown_title(self, chat) -> str:
        return chat.custom_title or chat.title or chat.chat_id

    @admin.display(description="team")
    def team_name(self, chat) -> str:
        return chat.team.name

    @admin.display(description="app")
    def app_name(self, chat) -> str:
        return chat.app.name

    @admin.display(description="customUid")
    def uid(self, chat) -> str:
        return chat.custom_uid

    @admin.display(description="source")
    def source_shown(self, chat) -> str:
        return chat.source

    @admin.display(description="key name")
    def key_name(self, chat) -> str:
        return chat.source_name

    @admin.display(description="messages")
    def messages(self, chat) -> int:
        return chat.message_count

    @admin.display(description="updated", ordering="updated_at")
    def updated(self, chat):
        return chat.updated_at

    # --- no hand edits: view, delete, export -------------------------------------------------

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_deleted_objects(self, objs, request):
        """A summary for the delete confirmation: listing every record of a long chat (as
        Django does by default) would load and print thousands of rows."""
        chats = list(objs)
        records = ChatItem.objects.filter(chat__in=chats).count()
        shown = [f"Conversation: {chat}" for chat in chats[:100]]
        return shown, {"conversations": len(chats), "records": records}, set(), []

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The conversation as a read-only transcript."""
        chat = Chat.objects.select_related("team", "app", "api_key").filter(pk=object_id).first()
        if chat is None:
            raise Http404("No such conversation.")
        if not self.has_view_permission(request, chat):
            raise PermissionDenied
        items = ChatItem.objects.filter(chat=chat)
        total = items.count()
        pages = max(1, -(-total // TRANSCRIPT_PAGE_SIZE))
        page = min(max(1, _int(request.GET.get("page"), 1)), pages)
        start = (page - 1) * TRANSCRIPT_PAGE_SIZE
        rows = items.order_by("id")[start : start + TRANSCRIPT_PAGE_SIZE]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Conversation: {chat}",
            "chat": chat,
            "entries": [transcript_entry(item) for item in rows],
            "total": total,
            "page": page,
            "pages": pages,
            "first_shown": start + 1 if total else 0,
            "last_shown": min(start + TRANSCRIPT_PAGE_SIZE, total),
            "has_delete_permission": self.has_delete_permission(request, chat),
            "original": chat,
            **(extra_context or {}),
        }
        return TemplateResponse(request, TRANSCRIPT_TEMPLATE, context)

    @admin.action(description="Export selected conversations as JSON Lines")
    def export_jsonl(self, request, queryset):
        """One JSON object per conversation, with its records, streamed as a download."""
        chats = (
            queryset.defer(None)  # every column: the list's queryset reads only what it shows
            .select_related("team", "app")
            .prefetch_related(Prefetch("items", queryset=ChatItem.objects.order_by("id")))
            .order_by("pk")
        )
        lines = (
            json.dumps(export_record(chat), ensure_ascii=False) + "\n"
            for chat in chats.iterator(chunk_size=200)
        )
        response = StreamingHttpResponse(lines, content_type="application/jsonl; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="conversations-{stamp}.jsonl"'
        return response


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def export_record(chat: Chat) -> dict:
    """A conversation and its records, in FastGPT's field names."""
    return {
        "chatId": chat.chat_id,
        "appId": chat.app_id,
        "appName": chat.app.name,
        "teamId": chat.team_id,
        "teamName": chat.team.name,
        "title": chat.title,
        "customTitle": chat.custom_title,
        "top": chat.top,
        "source": chat.source,
        "sourceName": chat.source_name,
        "customUid": chat.custom_uid,
        "variables": chat.variables,
        "metadata": chat.metadata,
        "createTime": chat.created_at.isoformat(),
        "updateTime": chat.updated_at.isoformat(),
        "items": [
            {
                "dataId": item.data_id,
                "obj": item.obj,
                "value": item.value,
                "responseData": item.response_data,
                "errorMsg": item.error_msg,
                "interrupted": item.interrupted,
                "userGoodFeedback": item.user_good_feedback,
                "userBadFeedback": item.user_bad_feedback,
                "durationSeconds": item.duration_seconds,
                "time": item.time.isoformat(),
            }
            for item in chat.items.all()
        ],
    }


# --- transcript -----------------------------------------------------------------------------


def transcript_entry(item: ChatItem) -> dict:
    """One record as the transcript template shows it: readable parts, not raw JSON.

    Times and numbers are formatted here, once, rather than by the template's localisation
    machinery for every value."""
    parts = read_parts(item.value)
    entry = {
        "item": item,
        "time": timezone.localtime(item.time).strftime("%Y-%m-%d %H:%M:%S"),
        "is_ai": item.obj == ChatRole.AI,
        "texts": parts.texts,
        "reasoning": parts.reasoning,
        "files": parts.files,
        "tools": parts.tools,
        "other_parts": parts.other,
    }
    if item.obj == ChatRole.AI:
        summary = run_summary(item.response_data)
        entry.update(
            quotes=[
                {**quote, "score_shown": _score(quote.get("score")), "snippet": quote_snippet(quote)}
                for quote in summary.quotes if isinstance(quote, dict)
            ],
            running_time=_number(summary.running_time) if summary.running_time else "",
            nodes=[
                {
                    "name": node.name,
                    "model": node.model,
                    "tokens": _number(node.tokens),
                    "running_time": _number(node.running_time),
                }
                for node in node_lines(item.response_data)
            ],
        )
    return entry


def quote_snippet(quote: dict) -> str:
    """The start of a quote's text (q, then a), for the list under an answer."""
    text = "\n".join(str(quote.get(key) or "").strip() for key in ("q", "a") if quote.get(key)).strip()
    return text if len(text) <= QUOTE_SNIPPET_CHARS else text[:QUOTE_SNIPPET_CHARS].rstrip() + " …"


def _number(value) -> str:
    """A number as text ("" when absent); other values (e.g. per-channel scores) as they are."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def _score(value) -> str:
    """A quote's score: one number, or FastGPT's per-channel list [{type, value}, …]."""
    if isinstance(value, list):
        return ", ".join(
            f"{part.get('type', '')} {_number(part.get('value'))}".strip()
            for part in value if isinstance(part, dict)
        )
    return _number(value)
