"""Knowledge bases. A dataset (or folder of datasets) belongs to one team.

Collections and their data (chunks, vectors, full-text tokens) hang under `Dataset`.
"""

from django.db import models
from django.utils import timezone

from config.ids import new_object_id
from datasets.fields import EmbeddingField


class DatasetType(models.TextChoices):
    DATASET = "dataset", "dataset"
    FOLDER = "folder", "folder"


class Dataset(models.Model):
    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    team = models.ForeignKey("keys.Team", on_delete=models.CASCADE, related_name="datasets")
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )
    type = models.CharField(max_length=16, choices=DatasetType.choices, default=DatasetType.DATASET)
    name = models.CharField(max_length=100)
    intro = models.TextField(blank=True, default="")
    avatar = models.CharField(max_length=500, blank=True, default="")
    vector_model = models.CharField(max_length=100)
    agent_model = models.CharField(max_length=100)
    vlm_model = models.CharField(max_length=100, blank=True, default="")
    status = models.CharField(max_length=16, default="active")
    # Bumped in the same transaction as any write or delete of the dataset's vectors: a
    # process's cached vectors (the NumPy backend) are stale when it differs.
    vector_version = models.BigIntegerField(default=0, editable=False)
    # When that last happened: pgvector builds a dataset's HNSW index once its vectors have
    # been still for a moment (datasets/search/vector/pgvector_indexes.py).
    vectors_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["team", "parent", "-updated_at"], name="dataset_team_parent")]

    def __str__(self) -> str:
        return self.name


# --- collections, data, indexes -------------------------------------------------------------


class CollectionType(models.TextChoices):
    FOLDER = "folder", "folder"
    VIRTUAL = "virtual", "virtual"
    TEXT = "text", "text"
    LINK = "link", "link"
    FILE = "file", "file"
    API = "api", "api"
    EXTERNAL_FILE = "externalFile", "externalFile"


class TrainingType(models.TextChoices):
    CHUNK = "chunk", "chunk"
    QA = "qa", "qa"


class CollectionStatus(models.TextChoices):
    READY = "ready", "ready"
    TRAINING = "training", "training"
    ERROR = "error", "error"


class Collection(models.Model):
    """A source in a dataset (a text, a file, a link…) or a folder of them."""

    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    team = models.ForeignKey("keys.Team", on_delete=models.CASCADE, related_name="collections")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="collections")
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )
    type = models.CharField(max_length=16, choices=CollectionType.choices)
    name = models.CharField(max_length=255)
    training_type = models.CharField(
        max_length=8, choices=TrainingType.choices, default=TrainingType.CHUNK
    )
    chunk_settings = models.JSONField(default=dict, blank=True)  # as the client sent them
    tags = models.JSONField(default=list, blank=True)
    forbid = models.BooleanField(default=False)
    raw_text_length = models.PositiveIntegerField(default=0)
    raw_text_hash = models.CharField(max_length=64, blank=True, default="")
    raw_link = models.CharField(max_length=2048, blank=True, default="")
    file_name = models.CharField(max_length=255, blank=True, default="")
    file_size = models.BigIntegerField(default=0)
    file_type = models.CharField(max_length=100, blank=True, default="")
    external_file_id = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(
        max_length=8, choices=CollectionStatus.choices, default=CollectionStatus.READY
    )
    error_message = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    # Whose usage points training spends (the key that created the collection or pushed data).
    usage_key = models.ForeignKey(
        "keys.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [
            # listV2: a dataset's children of one folder (or the root), newest first.
            models.Index(fields=["dataset", "parent", "-updated_at"], name="collection_dataset_parent"),
            models.Index(fields=["dataset", "external_file_id"], name="collection_external_file"),
            models.Index(fields=["team", "-updated_at"], name="collection_team"),
            models.Index(fields=["status"], name="collection_status"),
        ]

    def __str__(self) -> str:
        return self.name


class CollectionSource(models.Model):
    """An uploaded file's bytes, kept only until the background task has read them."""

    collection = models.OneToOneField(
        Collection, on_delete=models.CASCADE, primary_key=True, related_name="source"
    )
    content = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)
    # A read that failed for now (a link's server answered 5xx, timed out…) is tried again at
    # `read_next_at`, with backoff, up to TRAINING_MAX_ATTEMPTS reads.
    read_attempts = models.PositiveSmallIntegerField(default=0)
    read_next_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"source of {self.collection_id}"


class TrainingState(models.TextChoices):
    PENDING = "pending", "pending"
    READY = "ready", "ready"
    ERROR = "error", "error"


class Data(models.Model):
    """One chunk of a collection: a question/answer pair, searched through its indexes."""

    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    team = models.ForeignKey("keys.Team", on_delete=models.CASCADE, related_name="+")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="data")
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="data")
    q = models.TextField()
    a = models.TextField(blank=True, default="")
    chunk_index = models.IntegerField(default=0)
    # The full-text tokens of q and a, space-separated (providers.words); indexed by the
    # database's full-text engine (a GIN expression index / an FTS5 table kept by triggers).
    search_words = models.TextField(blank=True, default="")
    training_state = models.CharField(
        max_length=8, choices=TrainingState.choices, default=TrainingState.PENDING
    )
    train_attempts = models.PositiveSmallIntegerField(default=0)
    train_error = models.TextField(blank=True, default="")
    # Training bookkeeping: a pending item is claimable when train_next_at is null or past; a
    # claim sets it to the end of a lease (a crashed worker's claim expires) and a random token,
    # so a worker whose item was edited meanwhile cannot mark it trained.
    train_next_at = models.DateTimeField(null=True, blank=True)
    train_claim = models.CharField(max_length=32, blank=True, default="")
    bill_id = models.CharField(max_length=24, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["chunk_index", "created_at"]
        verbose_name_plural = "data"
        indexes = [
            models.Index(fields=["collection", "chunk_index", "created_at"], name="data_collection_chunk"),
            # trainingAmount, and the training claim (a collection's pending items in order,
            # read from the index until a batch of due ones is found: no sort).
            models.Index(
                fields=["collection", "training_state", "chunk_index", "id"], name="data_collection_training"
            ),
            models.Index(fields=["dataset", "training_state"], name="data_dataset_training"),
            models.Index(fields=["team", "-updated_at"], name="data_team"),
        ]

    def __str__(self) -> str:
        return self.q[:80]


class IndexType(models.TextChoices):
    DEFAULT = "default", "default"
    CUSTOM = "custom", "custom"
    SUMMARY = "summary", "summary"
    QUESTION = "question", "question"
    IMAGE = "image", "image"


class DataIndex(models.Model):
    """A text a data item is found by, with its vector (FastGPT's `indexes[]`, id = `dataId`)."""

    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    data = models.ForeignKey(Data, on_delete=models.CASCADE, related_name="indexes")
    # Denormalised from `data`, so the vector search filters without a join.
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=8, choices=IndexType.choices, default=IndexType.DEFAULT)
    text = models.TextField()
    embedding = EmbeddingField(null=True, blank=True, editable=False)  # null until trained
    dimensions = models.PositiveIntegerField(default=0, editable=False)  # 0 until trained

    class Meta:
        ordering = ["data", "id"]
        indexes = [
            # Vector recall filters by dataset (and the dimensions of its model).
            models.Index(fields=["dataset", "dimensions"], name="dataindex_dataset_dims"),
            models.Index(fields=["collection"], name="dataindex_collection"),
        ]

    def __str__(self) -> str:
        return self.text[:80]


class TrainingBill(models.Model):
    """A bill id grouping several pushes' training usage (createTrainingUsage)."""

    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    team = models.ForeignKey("keys.Team", on_delete=models.CASCADE, related_name="+")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="training_bills")
    name = models.CharField(max_length=200, blank=True, default="")
    # Embedding tokens spent training the data pushed with this bill id.
    tokens = models.BigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["team", "dataset", "-created_at"], name="trainingbill_team")]

    def __str__(self) -> str:
        return self.name or self.id


class QaChunk(models.Model):
    """A chunk of a `qa` collection (or a pushed item) waiting for a language model to write
    its questions and answers (datasets/training_qa.py); deleted once they are stored as data
    items. Claimed, retried and failed like a data item's training (same fields' meaning)."""

    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="qa_chunks")
    text = models.TextField()
    chunk_index = models.IntegerField(default=0)
    prompt = models.TextField(blank=True, default="")  # the client's own instructions, if any
    bill_id = models.CharField(max_length=24, blank=True, default="")
    training_state = models.CharField(
        max_length=8, choices=TrainingState.choices, default=TrainingState.PENDING
    )
    train_attempts = models.PositiveSmallIntegerField(default=0)
    train_error = models.TextField(blank=True, default="")
    train_next_at = models.DateTimeField(null=True, blank=True)
    train_claim = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["chunk_index", "id"]
        verbose_name = "QA chunk"
        indexes = [
            models.Index(fields=["collection", "training_state", "chunk_index", "id"], name="qachunk_collection_training"),
        ]

    def __str__(self) -> str:
        return self.text[:80]
