"""The backend a command (or the whole REPL) works with: settings, backend and manager.

One object owns the backend's lifetime so that the REPL can switch backends (unloading the
previous one) and one-shot commands close what they opened. The backend is built on first use,
by the public factory, so commands that only list or describe never import an engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import BackendNotConfiguredError
from ._options import settings_from_flags

NO_PROVIDER_HINT = (
    "no backend selected: pass --provider openai|diffusers|sdcpp (or set ABSTRACTVISION_PROVIDER); "
    "in the REPL use /backend"
)


class BackendSession:
    """Backend flags -> settings -> backend (lazily) -> manager, plus the registry model gate."""

    def __init__(self, flags: Mapping[str, Any] | None = None, cap_model: str | None = None):
        self.flags = {k: v for k, v in (flags or {}).items() if v is not None}
        self.cap_model = cap_model
        self._backend: Any = None
        self._settings: Any = None

    def __repr__(self) -> str:  # flags may hold an API key
        return f"BackendSession(provider={self.flags.get('provider')!r}, cap_model={self.cap_model!r})"

    @property
    def settings(self) -> Any:
        """Settings with the flags as explicit values (read once per backend choice)."""
        if self._settings is None:
            from ..config import load_settings

            provider = self.flags.get("provider") or load_settings().provider
            provider = _canonical(provider) if provider else None
            self._settings = load_settings(**settings_from_flags(self.flags, provider))
        return self._settings

    @property
    def provider(self) -> str:
        """The chosen backend: flag/env, else ``openai`` when a base URL or API key is configured."""
        settings = self.settings
        if settings.provider:
            return _canonical(settings.provider)
        if settings.base_url or settings.api_key:
            return "openai"
        raise BackendNotConfiguredError(NO_PROVIDER_HINT)

    @property
    def backend(self) -> Any:
        if self._backend is None:
            from ..backends import create_backend

            self._backend = create_backend(self.provider, self.settings)
        return self._backend

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    def manager(self, cap_model: str | None = None) -> Any:
        """A manager over the backend, gated on ``cap_model`` (else the session's) when set."""
        from ..vision_manager import VisionManager

        return VisionManager(backend=self.backend, model_id=cap_model or self.cap_model)

    def switch(self, flags: Mapping[str, Any]) -> None:
        """Use another backend; the previous one is closed (its weights and clients released)."""
        self.close()
        self.flags = {k: v for k, v in flags.items() if v is not None}
        self._settings = None

    def close(self) -> None:
        if self._backend is not None:
            backend, self._backend = self._backend, None
            backend.close()


def _canonical(name: str) -> str:
    from ..backends import canonical_backend_name

    return canonical_backend_name(name)


__all__ = ["NO_PROVIDER_HINT", "BackendSession"]
