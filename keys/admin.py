"""Admin for teams and keys. A new key's plaintext is shown once, on the page that creates it.

Forms that issue keys (add, rotate) carry a one-time token: a resubmitted form (a browser
reload of the "key created" page) finds its token used and issues nothing. Only the token is
stored, never a key — not in the session either.
"""

import secrets

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from keys import services
from keys.hashing import KEY_PREFIX, hash_key, split_legacy_key
from keys.models import ApiKey, Team

ISSUED_TEMPLATE = "admin/keys/apikey/key_issued.html"
REVOKE_TEMPLATE = "admin/keys/apikey/revoke_confirmation.html"
FIND_TEMPLATE = "admin/keys/apikey/find_key.html"
USE_FIND_PAGE = (
    "That looks like a whole key. Paste whole keys into “Find a key by its secret” instead: "
    "the search box puts what you type into the page's address, and so into browser history "
    "and access logs."
)
ALREADY_ISSUED = (
    "This form was already submitted: its key was shown once and is not shown again. "
    "Nothing new was issued."
)


def new_issue_token() -> str:
    return secrets.token_urlsafe(32)


def _looks_like_a_key(term: str) -> bool:
    term = term.strip()
    return term.startswith(KEY_PREFIX) and len(term) > len(KEY_PREFIX) + 20


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "created_at"]
    search_fields = ["name", "id"]
    readonly_fields = ["id", "created_at"]


class ApiKeyAddForm(forms.ModelForm):
    issue_token = forms.CharField(widget=forms.HiddenInput, initial=new_issue_token)

    class Meta:
        model = ApiKey
        fields = ["team", "app", "name", "expires_at", "max_usage_points"]

    def clean(self):
        data = super().clean()
        team, app = data.get("team"), data.get("app")
        if team and app and app.team_id != team.pk:
            self.add_error("app", "This app belongs to another team.")
        # Claimed last, once the form is otherwise valid (the admin's transaction undoes the
        # claim if saving fails later).
        if not self.errors and not services.claim_issue_token(token=data.get("issue_token", "")):
            raise forms.ValidationError(ALREADY_ISSUED, code="already_issued")
        return data


class FindKeyForm(forms.Form):
    key = forms.CharField(
        label="API key", strip=True, widget=forms.PasswordInput(attrs={"autocomplete": "off", "size": 60}),
    )


class KeyActionForm(helpers.ActionForm):
    """The changelist's action bar, with the one-time token a rotation claims."""

    issue_token = forms.CharField(widget=forms.HiddenInput, required=False, initial=new_issue_token)


class StateFilter(admin.SimpleListFilter):
    """The states of `ApiKey.state()`, plus "over cap" (usable but out of usage points)."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [
            ("active", "active"),
            ("rotating", "rotating out"),
            ("revoked", "revoked"),
            ("expired", "expired"),
            ("over_cap", "over cap"),
        ]

    def queryset(self, request, queryset):
        now = timezone.now()
        not_revoked = Q(revoked_at__isnull=True)
        unexpired = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        over_cap = Q(max_usage_points__gte=0, usage_points__gte=F("max_usage_points"))
        conditions = {
            "active": not_revoked & unexpired & ~over_cap,
            "rotating": Q(revoked_at__gt=now),
            "revoked": Q(revoked_at__lte=now),
            "expired": not_revoked & ~unexpired,
            "over_cap": not_revoked & unexpired & over_cap,
        }
        condition = conditions.get(self.value())
        return queryset if condition is None else queryset.filter(condition)


class ScopeFilter(admin.SimpleListFilter):
    title = "scope"
    parameter_name = "scope"

    def lookups(self, request, model_admin):
        return [("global", "global (whole team)"), ("app", "one app")]

    def queryset(self, request, queryset):
        if self.value() == "global":
            return queryset.filter(app__isnull=True)
        if self.value() == "app":
            return queryset.filter(app__isnull=False)
        return queryset


def _count_of(model_path: str, **filters) -> Subquery:
    """A per-key count as a subquery (two Count joins on one query would multiply)."""
    from django.apps import apps

    model = apps.get_model(model_path)
    rows = model.objects.filter(**filters).order_by().values(list(filters)[0])
    return Coalesce(Subquery(rows.annotate(n=Count("pk")).values("n")[:1], output_field=IntegerField()), 0)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name", "prefix_shown", "team", "scope", "last_used_at", "expires_at", "usage", "state_shown",
        "chat_count", "turn_count",
    ]
    list_filter = [StateFilter, ScopeFilter, "team"]
    list_select_related = ["team", "app"]
    search_fields = ["name", "prefix", "team__name", "app__name"]
    search_help_text = "Name, key prefix, team or app. To find a key from its secret, use “Find a key by its secret”."
    change_list_template = "admin/keys/apikey/change_list.html"
    actions = ["rotate_selected", "revoke_selected"]
    action_form = KeyActionForm
    # The hash is never a field of any form or page.
    fields = [
        "team", "app", "name", "prefix_shown", "created_at", "last_used_at", "expires_at",
        "max_usage_points", "usage_points", "revoked_at", "replaced_by", "chat_count", "turn_count",
    ]
    readonly_fields = [
        "team", "app", "prefix_shown", "created_at", "last_used_at", "usage_points", "revoked_at",
        "replaced_by", "chat_count", "turn_count",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            chats_made=_count_of("chat.Chat", api_key=OuterRef("pk")),
            turns_made=_count_of("chat.ChatItem", chat__api_key=OuterRef("pk"), obj="AI"),
        )

    def get_urls(self):
        find = path("find/", self.admin_site.admin_view(self.find_key_view), name="keys_apikey_find")
        return [find, *super().get_urls()]

    def get_search_results(self, request, queryset, search_term):
        if _looks_like_a_key(search_term):
            # Searching for it would work (by hash), but the secret is already in a GET URL by
            # now; steer the operator to the POST form rather than make this a habit.
            self.message_user(request, USE_FIND_PAGE, messages.WARNING)
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)

    def find_key_view(self, request):
        """A whole key pasted into a POST form (never a URL), found by its hash: the key's
        page, or the form again saying no key matches."""
        form = FindKeyForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            secret, _ = split_legacy_key(form.cleaned_data["key"])
            found = self.get_queryset(request).filter(key_hash=hash_key(secret)).first()
            if found is not None:
                return redirect(reverse("admin:keys_apikey_change", args=[found.pk]))
            form.add_error("key", "No key matches. It may have been typed wrongly, or deleted.")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Find a key by its secret",
            "form": form,
        }
        return TemplateResponse(request, FIND_TEMPLATE, context)  # admin_view: never cached

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
        if state == "active" and obj.is_over_cap:
            return "over cap"
        return state.label

    @admin.display(description="chats", ordering="chats_made")
    def chat_count(self, obj) -> int:
        return getattr(obj, "chats_made", 0)

    @admin.display(description="chat turns", ordering="turns_made")
    def turn_count(self, obj) -> int:
        return getattr(obj, "turns_made", 0)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
            kwargs["fields"] = ApiKeyAddForm.Meta.fields
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return [*ApiKeyAddForm.Meta.fields, "issue_token"] if obj is None else self.fields

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
        token = request.POST.get("issue_token", "")
        if not token or not services.claim_issue_token(token=token):
            self.message_user(request, ALREADY_ISSUED, messages.WARNING)
            return None
        issued, skipped = [], []
        for key in queryset:
            try:
                issued.append(services.rotate_api_key(key=key))
            except ValueError as exc:
                skipped.append(f"{key}: {exc}")
        if skipped:
            self.message_user(request, "Not rotated — " + "; ".join(skipped), messages.WARNING)
        if issued:
            return self._issued_page(request, issued, title="API keys rotated")
        return None

    @admin.action(description="Revoke selected keys now (irreversible)…")
    def revoke_selected(self, request, queryset):
        if request.POST.get("post") != "yes":  # first ask, like Django's delete action
            context = {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Revoke these keys?",
                "keys": list(queryset),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, REVOKE_TEMPLATE, context)
        for key in queryset:
            services.revoke_api_key(key=key)
        self.message_user(request, f"{queryset.count()} key(s) revoked.", messages.SUCCESS)
        return None

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
