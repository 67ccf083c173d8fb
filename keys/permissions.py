"""Key scopes. A global key reaches everything of its team; an app key only its app's chat."""

from rest_framework.permissions import BasePermission

from config.errors import KeyOutOfScope, MissingCredential


class HasApiKey(BasePermission):
    """Any valid key (chat and history endpoints narrow further to the key's app)."""

    def has_permission(self, request, view) -> bool:
        if request.auth is None:
            raise MissingCredential()
        return True


class IsGlobalKey(HasApiKey):
    """Only a global (team) key: datasets and other team-wide resources."""

    def has_permission(self, request, view) -> bool:
        super().has_permission(request, view)
        if not request.auth.key.is_global:
            raise KeyOutOfScope(
                "This is an app key: it may only call its app's chat and history endpoints. "
                "Use a global key for this endpoint."
            )
        return True
