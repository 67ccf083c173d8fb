"""Admin for knowledge bases."""

from django.contrib import admin

from datasets.models import Dataset


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "team", "type", "vector_model", "updated_at"]
    list_filter = ["team", "type"]
    list_select_related = ["team"]
    search_fields = ["name", "id"]
    readonly_fields = ["id", "created_at", "updated_at"]
