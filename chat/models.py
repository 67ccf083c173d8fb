"""Chat apps and their conversations: `App` → `Chat` (one conversation) → `ChatItem` (one turn)."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from chat.value_parts import value_text
from config.ids import new_object_id


class App(models.Model):
    """A chat app of a team: the model and prompt its conversations run with."""

    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    team = models.ForeignKey("keys.Team", on_delete=models.CASCADE, related_name="apps")
    name = models.CharField(max_length=100)
    intro = models.TextField(blank=True, default="")
    avatar = models.CharField(max_length=500, blank=True, default="")
    model = models.CharField(
        max_length=100, blank=True, default="",
        help_text="A configured chat model's name; empty uses the default model.",
    )
    system_prompt = models.TextField(
        blank=True, default="", help_text="May use {{variable}} placeholders."
    )
    temperature = models.FloatField(default=0.7)
    max_tokens = models.PositiveIntegerField(default=2000, help_text="Longest answer, in tokens.")
    history_turns = models.PositiveSmallIntegerField(
        default=6, help_text="How many earlier question/answer rounds are sent to the model."
    )
    welcome_text = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["team", "name"], name="app_team_name")]

    def __str__(self) -> str:
        return self.name


class ChatSource(models.TextChoices):
    API = "api", "API"
    ONLINE = "online", "online"
    SHARE = "share", "share link"
    TEAM = "team", "team space"
    TEST = "test", "test"


class Chat(models.Model):
    """One conversation window of an app, named by the client's `chatId`."""

    team = models.ForeignKey("keys.Team", on_delete=models.CASCADE, related_name="chats")
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="chats")
    chat_id = models.CharField(max_length=250)
    title = models.CharField(max_length=200, blank=True, default="")
    custom_title = models.CharField(max_length=200, blank=True, default="")
    top = models.BooleanField(default=False)
    source = models.CharField(max_length=16, choices=ChatSource.choices, default=ChatSource.API)
    source_name = models.CharField(max_length=100, blank=True, default="")
    # The key that started the chat (its name is in source_name; rotated or same-named keys
    # are told apart by this). Kept when the key row goes.
    api_key = models.ForeignKey(
        "keys.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="chats",
        help_text="The API key that started this chat.",
    )
    custom_uid = models.CharField(max_length=255, blank=True, default="")
    variables = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [models.UniqueConstraint(fields=["app", "chat_id"], name="chat_app_chat_id")]
        indexes = [
            models.Index(fields=["app", "-top", "-updated_at"], name="chat_app_top_updated"),
            models.Index(fields=["app", "custom_uid", "-updated_at"], name="chat_app_uid_updated"),
            models.Index(fields=["team", "-updated_at"], name="chat_team_updated"),
            # The admin's search finds a chat id or customUid in any app.
            models.Index(fields=["chat_id"], name="chat_chat_id"),
            models.Index(fields=["custom_uid", "-updated_at"], name="chat_uid_updated"),
            # The admin's list order, whole: a page far in is read from the index alone.
            models.Index(fields=["-updated_at", "-id"], name="chat_updated_id"),
        ]

    def __str__(self) -> str:
        return self.custom_title or self.title or self.chat_id


class ChatRole(models.TextChoices):
    HUMAN = "Human", "Human"
    AI = "AI", "AI"
    SYSTEM = "System", "System"


class ChatItem(models.Model):
    """One record of a conversation: a question (Human) or an answer (AI).

    `value` holds FastGPT's typed parts, e.g. [{"type": "text", "text": {"content": "…"}}].
    An AI record keeps the run's node responses in `response_data`, and `error_msg` when the
    model failed; `interrupted` marks an answer cut short by the client going away.
    """

    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="items")
    data_id = models.CharField(max_length=64)
    obj = models.CharField(max_length=8, choices=ChatRole.choices)
    value = models.JSONField(default=list)
    response_data = models.JSONField(default=list, blank=True)
    error_msg = models.TextField(blank=True, default="")
    interrupted = models.BooleanField(default=False)
    user_good_feedback = models.TextField(null=True, blank=True)
    user_bad_feedback = models.TextField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["chat", "data_id"], name="chatitem_chat_data_id")]
        indexes = [models.Index(fields=["chat", "id"], name="chatitem_chat_id")]

    def __str__(self) -> str:
        return f"{self.obj} {self.data_id}"

    @property
    def text(self) -> str:
        """The text parts of `value`, joined."""
        return value_text(self.value)


# --- the knowledge an app answers from ------------------------------------------------------


class DatasetSearchMode(models.TextChoices):
    """datasets.search.pipeline's modes (SEARCH_MODES), by FastGPT's names."""

    EMBEDDING = "embedding", "embedding (vector similarity)"
    FULL_TEXT = "fullTextRecall", "full text"
    MIXED = "mixedRecall", "mixed (embedding + full text, RRF)"


class AppDataset(models.Model):
    """A dataset an app searches before answering. Only datasets of the app's own team may be
    linked (checked in the admin, and again at each turn)."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="dataset_links")
    dataset = models.ForeignKey(
        "datasets.Dataset", on_delete=models.CASCADE, related_name="app_links",
        limit_choices_to={"type": "dataset"},
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["app", "dataset"], name="appdataset_app_dataset")]
        verbose_name = "linked dataset"

    def __str__(self) -> str:
        return f"{self.app} → {self.dataset}"


class AppDatasetSearch(models.Model):
    """How an app searches its linked datasets and quotes what it finds (FastGPT's dataset
    search node settings and the chat node's quote template and prompt). An app with linked
    datasets and no row here uses these defaults."""

    app = models.OneToOneField(App, on_delete=models.CASCADE, primary_key=True, related_name="dataset_search")
    search_mode = models.CharField(
        max_length=16, choices=DatasetSearchMode.choices, default=DatasetSearchMode.MIXED,
        help_text="FastGPT defaults to embedding; mixed recall is the default here because the "
        "built-in lexical embedding ranks well only beside full text (docs/chat-api.md).",
    )
    similarity = models.FloatField(
        default=0.4, validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="0–1. The lowest score a quote may have: applied to the rerank score when rerank "
        "runs, else to the embedding score in embedding mode; not applied otherwise.",
    )
    limit = models.PositiveIntegerField(
        default=3000, validators=[MinValueValidator(1), MaxValueValidator(20000)],
        help_text="Token budget of the quotes (1–20000); the best quote is always kept."
    )
    top_k = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(200)],
        help_text="At most this many quotes (empty: only the token budget)."
    )
    embedding_weight = models.FloatField(
        default=0.5, validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="0–1. mixedRecall: the embedding list's RRF weight."
    )
    using_rerank = models.BooleanField(default=False, verbose_name="rerank")
    rerank_model = models.CharField(
        max_length=100, blank=True, default="", help_text="A declared rerank model; empty: the first declared."
    )
    rerank_weight = models.FloatField(
        default=0.5, validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="0–1. The rerank order's RRF weight (1: rerank alone)."
    )
    using_extension = models.BooleanField(
        default=False, verbose_name="query extension",
        help_text="A language model writes alternative queries, each searched and fused.",
    )
    extension_model = models.CharField(
        max_length=100, blank=True, default="", help_text="A declared LLM; empty: the default one."
    )
    extension_background = models.TextField(
        blank=True, default="", help_text="What the knowledge base is about, given to the extension model."
    )
    quote_template = models.TextField(
        blank=True, default="",
        help_text="How each quote is written into the prompt; empty: FastGPT's default "
        "(docs/chat-api.md). Variables: {{q}} {{a}} {{source}} {{sourceId}} {{id}} {{index}} "
        "{{updateTime}} {{chunkIndex}} {{datasetId}} {{collectionId}}.",
    )
    quote_prompt = models.TextField(
        blank=True, default="",
        help_text="The question as the model gets it; empty: FastGPT's default (docs/chat-api.md). "
        "Variables: {{quote}} (the quotes, each by the template) and {{question}}.",
    )

    class Meta:
        verbose_name = "dataset search settings"
        verbose_name_plural = "dataset search settings"

    def __str__(self) -> str:
        return f"dataset search of {self.app}"
