"""Admin for chat apps."""

from django.contrib import admin

from chat.models import App


@admin.register(App)
class AppAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "team", "model", "updated_at"]
    list_filter = ["team"]
    list_select_related = ["team"]
    search_fields = ["name", "id"]
    readonly_fields = ["id", "created_at", "updated_at"]
