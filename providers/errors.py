"""What a call to a model provider raises: one error type the API maps onto 502, one onto 504."""

from config.errors import ApiError, UpstreamError, UpstreamTimeout


class ProviderError(Exception):
    """The provider failed; answered as 502 (`UpstreamError`)."""

    api_error_class: type[ApiError] = UpstreamError

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def as_api_error(self, context: str = "") -> ApiError:
        """The API error to answer with, its message prefixed by ``context``."""
        return self.api_error_class(f"{context}{self.message}")


class ProviderTimeout(ProviderError):
    """The provider did not answer in time; answered as 504 (`UpstreamTimeout`)."""

    api_error_class = UpstreamTimeout
