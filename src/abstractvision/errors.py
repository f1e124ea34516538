"""Every error abstractvision raises on purpose.

Callers catch :class:`AbstractVisionError` to handle anything the library reports; the subclasses
say *what kind* of trouble it is, so a program can react (retry, ask for a different size, install
an extra) without parsing messages. Every message names the field, the setting or the fix.

Hierarchy::

    AbstractVisionError
    ├── BackendNotConfiguredError      a required setting (base URL, model path, ...) is missing
    ├── CapabilityNotSupportedError    the backend or model cannot do this task / option
    ├── UnknownModelError              a model id the capability registry does not know
    ├── OptionalDependencyMissingError an extra (diffusers, sdcpp) is not installed
    ├── InvalidRequestError            bad input, rejected before any backend work (also ValueError)
    ├── ModelNotAvailableError         the model is not on this machine and downloads are off
    ├── ProviderError                  a remote service answered with an error (HTTP status + message)
    │   ├── RateLimitError             429 after the retries ran out
    │   └── InvalidProviderResponseError  the service answered, but the body is unusable
    ├── ProviderConnectionError        the service could not be reached
    ├── RequestTimeoutError            a request or local run exceeded its time limit (also TimeoutError)
    ├── EngineError                    a local engine failed (exit code, stderr tail, out of memory)
    ├── GenerationCancelledError       the caller cancelled the run
    ├── BatchGenerationError           a batch item failed; carries the items already made
    ├── ArtifactError                  the asset store refused an id or lost a file
    │   └── ArtifactNotFoundError
    └── CapabilityRegistryError        the capability registry file is malformed
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class AbstractVisionError(Exception):
    """Base class of every error the library raises on purpose."""


class BackendNotConfiguredError(AbstractVisionError):
    """A setting the backend needs is missing; the message names the argument, flag and variable."""


class CapabilityNotSupportedError(AbstractVisionError):
    """The selected backend or model cannot perform the requested task or option."""


class UnknownModelError(AbstractVisionError):
    """The capability registry has no entry for this model id."""


class OptionalDependencyMissingError(AbstractVisionError, ImportError):
    """An optional engine is not installed; the message carries the exact ``pip install`` line."""

    def __init__(self, message: str, *, extra: str | None = None, package: str | None = None):
        super().__init__(message)
        self.extra = extra
        self.package = package


class InvalidRequestError(AbstractVisionError, ValueError):
    """Bad input, rejected before any backend work. ``field`` names the offending field."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class ModelNotAvailableError(AbstractVisionError):
    """The model is not present locally and downloading was not allowed."""

    def __init__(self, message: str, *, model: str | None = None):
        super().__init__(message)
        self.model = model


class AdapterNotAvailableError(AbstractVisionError):
    """A LoRA adapter asked for is not there (no such file, not in the cache and downloads are off,
    not one the engine or server offers), found before the run. ``adapter`` names it."""

    def __init__(self, message: str, *, adapter: str | None = None):
        super().__init__(message)
        self.adapter = adapter


class ProviderError(AbstractVisionError):
    """A remote service answered with an error.

    ``status`` is the HTTP status, ``provider_message`` the service's own explanation (already
    scrubbed of secrets), ``body`` a bounded excerpt of the response, ``retry_after`` the wait the
    service asked for in seconds, when it asked.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        provider_message: str | None = None,
        body: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.provider_message = provider_message
        self.body = body
        self.retry_after = retry_after


class RateLimitError(ProviderError):
    """The service kept answering 429 until the retries ran out."""


class InvalidProviderResponseError(ProviderError):
    """The service answered 2xx but the body cannot be used (malformed JSON, bad base64, ...)."""


class ProviderConnectionError(AbstractVisionError, ConnectionError):
    """The service could not be reached (refused, DNS, TLS) after the retries ran out."""


class RequestTimeoutError(AbstractVisionError, TimeoutError):
    """A request or a local engine run exceeded its time limit."""

    def __init__(self, message: str, *, timeout_s: float | None = None):
        super().__init__(message)
        self.timeout_s = timeout_s


class EngineError(AbstractVisionError):
    """A local engine failed. ``exit_code`` and ``stderr_tail`` say how, when a process was involved."""

    def __init__(self, message: str, *, exit_code: int | None = None, stderr_tail: str | None = None):
        super().__init__(message)
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail


class GenerationCancelledError(AbstractVisionError):
    """The caller cancelled the run (cancel event set, or a progress callback raised this)."""


class BatchGenerationError(AbstractVisionError):
    """One item of a batch failed. ``results`` holds the items made before it (assets or refs).

    Why: a batch of expensive generations must not lose its finished images because item 7 hit a
    rate limit; the caller gets them back here, alongside the cause (``__cause__``/``failed_index``).
    """

    def __init__(self, message: str, *, results: Sequence[Any], failed_index: int, seed: int | None):
        super().__init__(message)
        self.results = list(results)
        self.failed_index = failed_index
        self.seed = seed


class ArtifactError(AbstractVisionError):
    """The asset store refused an artifact id or reference."""


class ArtifactNotFoundError(ArtifactError, KeyError):
    """No artifact with this id in the store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CapabilityRegistryError(AbstractVisionError):
    """The capability registry file is malformed; the message names the entry and field."""


__all__ = [
    "AbstractVisionError",
    "AdapterNotAvailableError",
    "ArtifactError",
    "ArtifactNotFoundError",
    "BackendNotConfiguredError",
    "BatchGenerationError",
    "CapabilityNotSupportedError",
    "CapabilityRegistryError",
    "EngineError",
    "GenerationCancelledError",
    "InvalidProviderResponseError",
    "InvalidRequestError",
    "ModelNotAvailableError",
    "OptionalDependencyMissingError",
    "ProviderConnectionError",
    "ProviderError",
    "RateLimitError",
    "RequestTimeoutError",
    "UnknownModelError",
]
