"""The server's own settings, declared once like a backend's: variable, flag, help.

``abstractvision serve`` builds its flags from these declarations and resolves them through
:func:`abstractvision.config.resolve` (flag > environment > default), so ``--max-queue`` and
``ABSTRACTVISION_SERVER_MAX_QUEUE`` cannot drift apart.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from ..config import clean_secret, setting
from ..errors import BackendNotConfiguredError


@dataclass(frozen=True)
class ServerConfig:
    """How ``abstractvision serve`` listens, who may call it and how much it takes on."""

    host: str = setting("127.0.0.1", env="ABSTRACTVISION_SERVER_HOST", help="Address to bind.")
    port: int = setting(8000, env="ABSTRACTVISION_SERVER_PORT", help="Port to listen on.")
    api_keys: tuple[str, ...] = setting(
        (),
        env="ABSTRACTVISION_SERVER_API_KEYS",
        flag="--api-key",
        secret=True,
        help="Keys clients send as 'Authorization: Bearer KEY' (repeat the flag; the variable is a comma list).",
    )
    api_keys_file: str | None = setting(
        env="ABSTRACTVISION_SERVER_API_KEYS_FILE", help="A file of keys, one per line ('#' starts a comment)."
    )
    no_auth: bool = setting(
        False,
        env="ABSTRACTVISION_SERVER_NO_AUTH",
        help="Serve a non-loopback address without keys (refused unless given explicitly).",
    )
    max_queue: int = setting(
        32, env="ABSTRACTVISION_SERVER_MAX_QUEUE", help="Jobs waiting at most; more get 429 with Retry-After."
    )
    concurrency: int | None = setting(
        env="ABSTRACTVISION_SERVER_CONCURRENCY",
        help="Jobs run at once (default 1 for local engines, 4 for an HTTP service).",
    )
    store: str | None = setting(
        env="ABSTRACTVISION_SERVER_STORE",
        help="Folder of results and the job database (default: abstractvision/server in the user data folder).",
    )
    preload: bool = setting(False, env="ABSTRACTVISION_SERVER_PRELOAD", help="Load the model before serving.")
    served_model_name: str | None = setting(
        env="ABSTRACTVISION_SERVER_MODEL_NAME",
        help="The model id clients use (default: the backend's model setting, else the backend's name).",
    )
    max_n: int = setting(8, env="ABSTRACTVISION_SERVER_MAX_N", help="Most images one request may ask for.")
    max_pixels: int = setting(
        4096 * 4096, env="ABSTRACTVISION_SERVER_MAX_PIXELS", help="Most pixels of one requested or uploaded image."
    )
    max_body_mb: float = setting(
        64.0, env="ABSTRACTVISION_SERVER_MAX_BODY_MB", help="Largest request body in MiB (413 above)."
    )
    grace_s: float = setting(
        30.0,
        env="ABSTRACTVISION_SERVER_GRACE_S",
        help="On SIGTERM, seconds the running jobs get to finish before they are cancelled.",
    )

    def __post_init__(self) -> None:
        keys = self.api_keys
        if isinstance(keys, str):
            keys = keys.split(",")
        cleaned = [clean_secret(key, "api key") for key in keys or ()]
        if self.api_keys_file:
            cleaned += _read_keys_file(self.api_keys_file)
        object.__setattr__(self, "api_keys", tuple(dict.fromkeys(key for key in cleaned if key)))
        if self.max_queue < 1 or self.max_n < 1 or self.max_pixels < 1:
            raise BackendNotConfiguredError("max_queue, max_n and max_pixels must be at least 1")
        if self.concurrency is not None and self.concurrency < 1:
            raise BackendNotConfiguredError("concurrency must be at least 1 (--concurrency)")

    def __repr__(self) -> str:  # the keys never show
        return (
            f"ServerConfig(host={self.host!r}, port={self.port}, keys={len(self.api_keys)}, "
            f"max_queue={self.max_queue}, concurrency={self.concurrency}, store={self.store!r})"
        )

    @property
    def body_limit_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    def check_exposure(self) -> None:
        """Refuse to serve a non-loopback address without keys unless ``no_auth`` says so on purpose.

        Why: a GPU reachable by anyone on the network is a cost and a content risk the user must choose.
        """
        if self.api_keys or self.no_auth or is_loopback(self.host):
            return
        raise BackendNotConfiguredError(
            f"refusing to serve {self.host} without API keys: pass --api-key KEY (or "
            "ABSTRACTVISION_SERVER_API_KEYS), or --no-auth to serve it open on purpose"
        )

    def store_path(self) -> Path:
        if self.store:
            return Path(self.store).expanduser()
        import platformdirs

        return Path(platformdirs.user_data_dir("abstractvision")) / "server"


def model_label(value: str) -> str:
    """A model setting as a served model id: a model file's stem (``sd15.safetensors`` -> ``sd15``),
    anything else (a Hub repo id, a service's model name) as it is."""
    value = str(value)
    return os.path.splitext(os.path.basename(value))[0] if os.path.isfile(value) else value


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _read_keys_file(path: str) -> list[str]:
    try:
        text = Path(path).expanduser().read_text("utf-8")
    except OSError as exc:
        raise BackendNotConfiguredError(f"api_keys_file: cannot read {path}: {exc.strerror or exc}") from None
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [clean_secret(line, f"a key in {path}") for line in lines if line]


__all__ = ["ServerConfig", "is_loopback", "model_label"]
