"""The backend a command (or the whole REPL) works with: settings, backend and manager.

One object owns the backend's lifetime so that the REPL can switch backends (unloading the
previous one) and one-shot commands close what they opened. The backend is built on first use,
by the public factory, so commands that only list or describe never import an engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import BackendNotConfiguredError
from ._options import PROVIDER_PARAM, settings_from_flags

NO_PROVIDER_HINT = (
    "no backend selected: pass --provider openai|diffusers|sdcpp (or set ABSTRACTVISION_PROVIDER); "
    "in the REPL use /backend"
)


_UNRESOLVED = object()


class BackendSession:
    """Backend flags (or REPL ``/backend`` words) -> settings -> backend (lazily) -> manager.

    ``flags`` are the CLI's parameter values (``provider`` and backend flags); ``fields`` are
    explicit values of the chosen backend's config fields (the REPL's ``/backend`` words). Both count
    as given, over the environment.
    """

    def __init__(
        self,
        flags: Mapping[str, Any] | None = None,
        cap_model: str | None = None,
        fields: Mapping[str, Any] | None = None,
    ):
        self.flags = {k: v for k, v in (flags or {}).items() if v is not None}
        self.fields = {k: v for k, v in (fields or {}).items() if v is not None}
        self.cap_model = cap_model
        self._backend: Any = None
        self._resolved: Any = _UNRESOLVED

    def __repr__(self) -> str:  # flags may hold an API key
        return f"BackendSession(provider={self.flags.get(PROVIDER_PARAM)!r}, cap_model={self.cap_model!r})"

    @property
    def settings(self) -> Any:
        """The general settings, ``--provider`` counting as given."""
        from ..config import load_settings

        return load_settings(provider=self.flags.get(PROVIDER_PARAM))

    @property
    def provider(self) -> str:
        """The chosen backend: flag/env, else ``openai`` when a base URL or API key is configured."""
        chosen = self.settings.provider
        if chosen:
            return _canonical(chosen)
        openai = self.resolve("openai", strict=False)
        if openai is not None and (openai.value("base_url") or openai.value("api_key")):
            return "openai"
        raise BackendNotConfiguredError(NO_PROVIDER_HINT)

    @property
    def resolved(self) -> Any:
        """The chosen backend's settings (:class:`~abstractvision.config.ResolvedSettings`, or ``None``
        for a backend without settings), read once."""
        if self._resolved is _UNRESOLVED:
            self._resolved = self.resolve(self.provider)
        return self._resolved

    def resolve(self, provider: str, strict: bool = True) -> Any:
        """``provider``'s settings under the session's flags and fields; ``None`` for a backend that
        declares no settings. ``strict=False``: flags of other backends are left out, not refused."""
        from ..backends import get_backend_config_class
        from ..config import resolve

        config_class = get_backend_config_class(provider)
        explicit = {**settings_from_flags(self.flags, provider, strict), **self.fields}
        return None if config_class is None else resolve(config_class, **explicit)

    @property
    def backend(self) -> Any:
        if self._backend is None:
            from ..backends import build_backend

            self._backend = build_backend(self.provider, self.resolved)
        return self._backend

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    def manager(self, cap_model: str | None = None) -> Any:
        """A manager over the backend, gated on ``cap_model`` (else the session's) when set."""
        from ..vision_manager import VisionManager

        return VisionManager(backend=self.backend, model_id=cap_model or self.cap_model)

    def switch(self, provider: str, fields: Mapping[str, Any]) -> None:
        """Use another backend; the previous one is closed (its weights and clients released)."""
        self.close()
        self.flags = {PROVIDER_PARAM: provider}
        self.fields = {k: v for k, v in fields.items() if v is not None}
        self._resolved = _UNRESOLVED

    def close(self) -> None:
        if self._backend is not None:
            backend, self._backend = self._backend, None
            backend.close()


def _canonical(name: str) -> str:
    from ..backends import canonical_backend_name

    return canonical_backend_name(name)


__all__ = ["NO_PROVIDER_HINT", "BackendSession"]
