"""What the API server answers when it refuses a request."""

from __future__ import annotations


class ApiError(Exception):
    """The API server refused a request: ``status`` and the Status ``reason``."""

    def __init__(self, status: int, reason: str, message: str, *, retry_after: float | None = None):
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """Worth retrying: conflicts, throttling and server-side failures."""
        return self.status in (409, 429) or self.status >= 500
