"""Admin for teams and keys. A new key's plaintext is shown once, on the page that creates it."""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone

from keys import services
from keys.models import ApiKey, Team

ISSUED_TEMPLATE = "admin/keys/apikey/key_issued.html"


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "created_at"]
    search_fields = ["name", "id"]
    readonly_fields = ["id", "created_at"]


class ApiKeyAddForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["team", "app", "name", "expires_at", "max_usage_points"]

    def clean(self):
        data = super().clean()
        team, app = data.get("team"), data.get("app")
        if team and app and app.team_id != team.pk:
            self.add_error("app", "This app belongs to another team.")
        return data


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name", "prefix_shown", "team", "scope", "last_used_at", "expires_at", "usage", "state_shown",
    ]
    list_filter = ["team", ("app", admin.EmptyFieldListFilter)]
    list_select_related = ["team", "app"]
    search_fields = ["name", "prefix", "team__name", "app__name"]
    actions = ["rotate_selected", "revoke_selected"]
    # The hash is never a field of any form or page.
    fields = [
        "team", "app", "name", "prefix_shown", "created_at", "last_used_at", "expires_at",
        "max_usage_points", "usage_points", "revoked_at", "replaced_by",
    ]
    readonly_fields = [
        "team", "app", "prefix_shown", "created_at", "last_used_at", "usage_points", "revoked_at",
        "replaced_by",
    ]

    @admin.display(description="key")
    def prefix_shown(self, obj) -> str:
        return f"{obj.prefix}…" if obj.prefix else "-"

    @admin.display(description="scope")
    def scope(self, obj) -> str:
        return f"app: {obj.app}" if obj.app_id else "global"

    @admin.display(description="usage / cap")
    def usage(self, obj) -> str:
        cap = "unlimited" if obj.max_usage_points < 0 else obj.max_usage_points
        return f"{obj.usage_points} / {cap}"

    @admin.display(description="state")
    def state_shown(self, obj) -> str:
        state = obj.state()
        if state == "rotating":
            return f"rotating out until {timezone.localtime(obj.revoked_at):%Y-%m-%d %H:%M}"
        return state.label

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
            kwargs["fields"] = ApiKeyAddForm.Meta.fields
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ApiKeyAddForm.Meta.fields if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        created, plaintext = services.create_api_key(
            team=obj.team,
            app=obj.app,
            name=obj.name,
            expires_at=obj.expires_at,
            max_usage_points=obj.max_usage_points,
        )
        # The admin goes on with `obj` (log entry, redirect), so it becomes the created row.
        for field in ("pk", "prefix", "key_hash", "created_at"):
            setattr(obj, field, getattr(created, field))
        obj._state.adding = False
        # Kept on this request only: shown by response_add, never stored.
        request._issued_keys = [(obj, plaintext)]

    def response_add(self, request, obj, post_url_continue=None):
        return self._issued_page(request, request._issued_keys, title="API key created")

    @admin.action(description="Rotate selected keys (old keys keep working for the grace period)")
    def rotate_selected(self, request, queryset):
        issued, skipped = [], 0
        for key in queryset:
            try:
                issued.append(services.rotate_api_key(key=key))
            except ValueError:
                skipped += 1
        if skipped:
            self.message_user(request, f"{skipped} revoked key(s) skipped.", messages.WARNING)
        if issued:
            return self._issued_page(request, issued, title="API keys rotated")
        return None

    @admin.action(description="Revoke selected keys now (irreversible)")
    def revoke_selected(self, request, queryset):
        for key in queryset:
            services.revoke_api_key(key=key)
        self.message_user(request, f"{queryset.count()} key(s) revoked.", messages.SUCCESS)

    def _issued_page(self, request, issued, *, title):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "issued": issued,
            "grace_hours": services.default_grace().total_seconds() / 3600,
        }
        response = TemplateResponse(request, ISSUED_TEMPLATE, context)
        response["Cache-Control"] = "no-store"  # the page holds a secret: keep it out of caches
        return response
