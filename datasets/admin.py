"""Admin for knowledge bases: datasets, collections and their data.

The admin enforces what the API enforces: a dataset's parent is a folder of the same team,
its models are declared ones (chosen from a list, the defaults preselected), its status one of
the known states; collections move only into folders of their dataset; deleting anything
removes its data, vectors and full-text tokens through the same services the API uses.
"""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count

from datasets import selectors
from datasets.models import (
    Collection, CollectionType, Data, DataIndex, Dataset, DatasetType, QaChunk,
)
from datasets.services import collections as collection_services
from datasets.services import data as data_services
from datasets.training import retrain_failed
from datasets.services import datasets as dataset_services
from providers.registry import all_models, default_model

# FastGPT's dataset states.
DATASET_STATUSES = [("active", "active"), ("syncing", "syncing"), ("waiting", "waiting"), ("error", "error")]


def _model_choices(model_type: str, *, blank: bool = False) -> list[tuple[str, str]]:
    names = sorted(m.name for m in all_models().values() if m.type == model_type)
    return ([("", "—")] if blank else []) + [(name, name) for name in names]


class DatasetForm(forms.ModelForm):
    vector_model = forms.ChoiceField(help_text="A declared embedding model (AI_MODELS).")
    agent_model = forms.ChoiceField(help_text="A declared language model (AI_MODELS).")
    vlm_model = forms.ChoiceField(required=False, help_text="Optional: a declared model for images.")
    status = forms.ChoiceField(choices=DATASET_STATUSES, initial="active")

    class Meta:
        model = Dataset
        fields = ["team", "parent", "type", "name", "intro", "avatar", "vector_model", "agent_model", "vlm_model", "status"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Choices are read now, not at import: the declared models come from settings.
        for name, model_type, blank in (("vector_model", "embedding", False), ("agent_model", "llm", False), ("vlm_model", "llm", True)):
            if name in self.fields:
                self.fields[name].choices = _model_choices(model_type, blank=blank)
        if self.instance._state.adding:  # (the id has a default, so pk is set already)
            self.initial.setdefault("vector_model", default_model("embedding").name)
            self.initial.setdefault("agent_model", default_model("llm").name)
            self.initial.setdefault("status", "active")
        if "parent" in self.fields:
            self.fields["parent"].queryset = Dataset.objects.filter(type=DatasetType.FOLDER)
            self.fields["parent"].help_text = "A folder of the same team (empty: the root)."

    def clean(self):
        data = super().clean()
        team = data.get("team") or getattr(self.instance, "team", None)
        parent = data.get("parent")
        if parent is not None:
            if parent.type != DatasetType.FOLDER:
                self.add_error("parent", "The parent must be a folder.")
            elif team is not None and parent.team_id != team.pk:
                self.add_error("parent", "The parent folder belongs to another team.")
            elif not self.instance._state.adding and parent.pk in selectors.dataset_tree_ids(dataset=self.instance):
                self.add_error("parent", "A folder cannot move into itself or a folder inside it.")
        return data


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    form = DatasetForm
    list_display = ["name", "id", "team", "type", "vector_model", "collection_count", "data_count", "updated_at"]
    list_filter = ["team", "type"]
    list_select_related = ["team"]
    search_fields = ["name", "id"]
    readonly_fields = ["id", "created_at", "updated_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            _collections=Count("collections", distinct=True), _data=Count("data", distinct=True)
        )

    @admin.display(description="collections", ordering="_collections")
    def collection_count(self, obj) -> int:
        return obj._collections

    @admin.display(description="data", ordering="_data")
    def data_count(self, obj) -> int:
        return obj._data

    def get_readonly_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None:
            # Moving a dataset to another team would strand its collections and data; a
            # folder/dataset switch would strand its children; vectors of another model
            # would not compare with those already trained.
            fields += ["team", "type"]
            if Data.objects.filter(dataset=obj).exists():
                fields.append("vector_model")
        return fields

    def delete_model(self, request, obj):
        dataset_services.delete_dataset(team_id=obj.team_id, dataset_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for dataset in queryset:
            if Dataset.objects.filter(pk=dataset.pk).exists():  # a folder above may have taken it
                dataset_services.delete_dataset(team_id=dataset.team_id, dataset_id=dataset.pk)


class CollectionForm(forms.ModelForm):
    class Meta:
        model = Collection
        fields = ["name", "parent", "tags", "forbid"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "parent" in self.fields and not self.instance._state.adding:
            self.fields["parent"].queryset = Collection.objects.filter(
                dataset_id=self.instance.dataset_id, type=CollectionType.FOLDER
            ).exclude(pk__in=selectors.collection_tree_ids(collection=self.instance))
            self.fields["parent"].help_text = "A folder of the same dataset (empty: the root)."

    def clean_tags(self):
        tags = self.cleaned_data.get("tags")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise forms.ValidationError('Tags are a JSON list of strings, e.g. ["manual", "v2"].')
        return tags


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    form = CollectionForm
    list_display = [
        "name", "id", "dataset", "type", "status", "data_amount", "training_amount", "error_shown", "updated_at",
    ]
    list_filter = ["status", "type", "training_type", "forbid"]
    list_select_related = ["dataset"]
    search_fields = ["name", "id", "dataset__name", "raw_link", "file_name"]
    actions = ["retrain_failed"]
    readonly_fields = [
        "id", "team", "dataset", "type", "training_type", "status", "error_message", "chunk_settings",
        "raw_text_length", "raw_text_hash", "raw_link", "file_name", "file_size", "file_type",
        "external_file_id", "metadata", "usage_key", "created_at", "updated_at",
    ]

    def get_queryset(self, request):
        return selectors.with_amounts(super().get_queryset(request))

    def has_add_permission(self, request):
        return False  # collections come from the API: their sources are read and chunked there

    @admin.display(description="data", ordering="data_amount")
    def data_amount(self, obj) -> int:
        return obj.data_amount

    @admin.display(description="training", ordering="training_amount")
    def training_amount(self, obj) -> int:
        return obj.training_amount

    @admin.display(description="error")
    def error_shown(self, obj) -> str:
        return (obj.error_message[:80] + "…") if len(obj.error_message) > 80 else obj.error_message

    @admin.action(description="Retrain the failed items of the selected collections")
    def retrain_failed(self, request, queryset):
        count = retrain_failed(collection_ids=list(queryset.values_list("pk", flat=True)))
        messages.success(request, f"{count} failed item(s) queued for training again.")

    def delete_model(self, request, obj):
        collection_services.delete_collections(team_id=obj.team_id, collection_ids=[obj.pk])

    def delete_queryset(self, request, queryset):
        for collection in queryset:
            if Collection.objects.filter(pk=collection.pk).exists():  # a folder above may have taken it
                collection_services.delete_collections(team_id=collection.team_id, collection_ids=[collection.pk])


class DataIndexInline(admin.TabularInline):
    model = DataIndex
    fields = ["id", "type", "text", "dimensions"]  # the vector itself is never shown
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class DataForm(forms.ModelForm):
    class Meta:
        model = Data
        fields = ["q", "a"]


@admin.register(Data)
class DataAdmin(admin.ModelAdmin):
    form = DataForm
    inlines = [DataIndexInline]
    list_display = ["q_shown", "id", "collection", "chunk_index", "training_state", "train_attempts", "updated_at"]
    list_filter = ["training_state"]
    list_select_related = ["collection"]
    search_fields = ["id", "q", "a", "collection__name"]
    readonly_fields = [
        "id", "team", "dataset", "collection", "chunk_index", "training_state", "train_attempts",
        "train_error", "bill_id", "created_at", "updated_at",
    ]

    def has_add_permission(self, request):
        return False

    @admin.display(description="q")
    def q_shown(self, obj) -> str:
        return (obj.q[:80] + "…") if len(obj.q) > 80 else obj.q

    def save_model(self, request, obj, form, change):
        # Through the service: the default index follows q/a and is embedded again.
        stored = Data.objects.get(pk=obj.pk)
        data_services.update_data(data=stored, q=form.cleaned_data["q"], a=form.cleaned_data["a"], indexes=None)

    def delete_model(self, request, obj):
        data_services.delete_data(data=obj)

    def delete_queryset(self, request, queryset):
        for item in queryset:
            data_services.delete_data(data=item)


@admin.register(QaChunk)
class QaChunkAdmin(admin.ModelAdmin):
    """The chunks of `qa` collections still waiting for the language model, read-only: what is
    stuck and why. Failed ones are retried with the collections' "Retrain the failed items"."""

    list_display = ["text_shown", "collection", "chunk_index", "training_state", "train_attempts", "train_error", "updated_at"]
    list_filter = ["training_state"]
    list_select_related = ["collection"]
    search_fields = ["id", "text", "collection__name", "collection__id"]
    readonly_fields = [
        "id", "collection", "chunk_index", "text", "prompt", "bill_id", "training_state", "train_attempts",
        "train_error", "train_next_at", "created_at", "updated_at",
    ]
    fields = readonly_fields

    @admin.display(description="text")
    def text_shown(self, obj) -> str:
        return (obj.text[:80] + "…") if len(obj.text) > 80 else obj.text

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the training owns them: removing one would drop its questions silently
