"""LoRA adapters on the servers that take them: what they offer, and a call's adapters as their ``lora`` list.

Two servers take adapters: ``abstractvision serve`` (a ``lora`` list of ``{"source", "scale"}`` objects
naming the ids its ``GET /v1/adapters`` lists; it refuses anything else) and stable-diffusion.cpp's
sd-server. Both lists are read before the call, so an unknown adapter is an
:class:`AdapterNotAvailableError` before anything runs, as on a local backend.

What sd-server does (0.4.5 source, ``examples/server/main.cpp``, and measured on the built server):

* Adapters travel only as structured JSON: ``"lora": [{"path", "multiplier"}]`` on
  ``/sdapi/v1/txt2img`` and ``/sdapi/v1/img2img`` (and on newer servers' native ``/sdcpp/v1/img_gen``).
  Its ``/v1`` endpoints read no adapters and leave ``<lora:...>`` tags in the prompt text.
* ``path`` must be one of the relative paths ``GET /sdapi/v1/loras`` lists (files under its
  ``--lora-model-dir``), else ``400 invalid lora path``. That list is read from disk **only when
  ``GET /sdapi/v1/loras`` is asked** (``refresh_lora_cache``): before the first such GET every path is
  refused. So each call with adapters asks for the list first, which also checks the names before the
  engine runs (:class:`AdapterNotAvailableError`).
* The engine then opens ``path`` relative to sd-server's working directory, not to ``--lora-model-dir``:
  started elsewhere, it logs "load lora tensors ... failed" and makes the image without the adapter
  (HTTP 200). Start sd-server in its LoRA folder (docs/backends/openai.md).
* With two or more entries, 0.4.5 keeps ``c_str()`` pointers into a ``std::vector<std::string>`` that
  grows under them: short paths move and the engine gets ``''`` (measured: the first of two adapters
  logged "loading LoRA from ''" and was left out, HTTP 200). Servers without the native job API (the
  ones that get ``/sdapi`` requests) are therefore sent one adapter per call; more is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import (
    AdapterNotAvailableError,
    CapabilityNotSupportedError,
    InvalidProviderResponseError,
    InvalidRequestError,
)
from ..lora import describe
from ..types import LoRAAdapterSpec, ProviderAdapterInfo
from ._http import HttpCall
from ._openai_dialects import Probe, ServerProfile

SDAPI_LORAS = "/sdapi/v1/loras"
#: ``abstractvision serve``'s listing (``{"object": "list", "data": [{"id", "weight_name", ...}]}``).
ADAPTERS = "/v1/adapters"
CAPABILITIES = "/sdcpp/v1/capabilities"
#: Most entries read from a listing: a folder with more adapters than this is not a listing to trust.
MAX_LISTED = 10_000
#: Longest name or path an entry may have.
_MAX_TEXT = 4096
#: How many listed paths an error message shows.
_SHOWN = 10


def takes_adapters(server: ServerProfile) -> bool:
    """Whether this server takes adapters: ``abstractvision serve``, or sd-server with its A1111 API
    or its native job API."""
    if server.dialect.name == "abstractvision":
        return True
    return server.dialect.name == "sdcpp" and (server.sdapi or server.native)


def listed_adapters(root: str, server: ServerProfile) -> Probe:
    """What the server offers, as :class:`ProviderAdapterInfo`. ``abstractvision serve``: ``GET /v1/adapters``
    (``id`` as it lists it). sd-server (``id``: its path without the suffix; ``path``: as the server names
    it): ``GET /sdapi/v1/loras``, else the native capabilities' ``loras``."""
    if server.dialect.name == "abstractvision":
        response = yield HttpCall("GET", f"{root}{ADAPTERS}")
        return parse_abstractvision_listing(response.json(), response.url)
    if server.sdapi:
        response = yield HttpCall("GET", f"{root}{SDAPI_LORAS}")
        entries = response.json()
    else:
        response = yield HttpCall("GET", f"{root}{CAPABILITIES}")
        payload = response.json()
        entries = payload.get("loras", []) if isinstance(payload, dict) else None
    return parse_listing(entries, response.url)


def parse_listing(entries: Any, source: str) -> list[ProviderAdapterInfo]:
    """sd-server's ``[{"name", "path"}, ...]``, checked; anything else is an :class:`InvalidProviderResponseError`."""
    if not isinstance(entries, list):
        raise InvalidProviderResponseError(
            f"{source} answered {str(entries)[:200]!r}, not a list of adapters", status=200
        )
    if len(entries) > MAX_LISTED:
        raise InvalidProviderResponseError(f"{source} listed {len(entries)} adapters, over {MAX_LISTED}", status=200)
    adapters = []
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        path = entry.get("path") if isinstance(entry, dict) else None
        if not all(isinstance(text, str) and 0 < len(text) <= _MAX_TEXT for text in (name, path)):
            raise InvalidProviderResponseError(
                f"{source}: entry {index} is not {{'name': str, 'path': str}}: {str(entry)[:200]!r}", status=200
            )
        stem, dot, suffix = path.rpartition(".")
        plain = stem if dot and "/" not in suffix else path
        adapters.append(ProviderAdapterInfo(id=plain, path=path, raw={"name": name, "path": path}))
    return adapters


def parse_abstractvision_listing(payload: Any, source: str) -> list[ProviderAdapterInfo]:
    """``abstractvision serve``'s ``{"data": [{"id", "weight_name", "size_bytes"}, ...]}``, checked."""
    entries = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(entries, list) or len(entries) > MAX_LISTED:
        raise InvalidProviderResponseError(
            f"{source} answered {str(payload)[:200]!r}, not a list of adapters", status=200
        )
    adapters = []
    for index, entry in enumerate(entries):
        ident = entry.get("id") if isinstance(entry, dict) else None
        weight = entry.get("weight_name") if isinstance(entry, dict) else None
        size = entry.get("size_bytes") if isinstance(entry, dict) else None
        if not (isinstance(ident, str) and 0 < len(ident) <= _MAX_TEXT) or not isinstance(weight, (str, type(None))):
            raise InvalidProviderResponseError(
                f"{source}: entry {index} is not {{'id': str, ...}}: {str(entry)[:200]!r}", status=200
            )
        size = size if isinstance(size, int) and not isinstance(size, bool) else None
        adapters.append(ProviderAdapterInfo(id=ident, weight_name=weight, size_bytes=size, raw=dict(entry)))
    return adapters


def server_loras(root: str, server: ServerProfile, adapters: Sequence[LoRAAdapterSpec]) -> Probe:
    """The request's ``lora`` list, its names checked against the server's listing before anything runs."""
    if not takes_adapters(server):
        where = "answers neither /sdapi/v1 nor /sdcpp/v1" if server.dialect.name == "sdcpp" else "is not sd-server"
        raise CapabilityNotSupportedError(
            f"lora_adapters: this server ({server.dialect.name} dialect) {where}, the only APIs that take "
            "LoRA adapters (sd-server's /v1 ignores them); use a local backend or an sd-server"
        )
    if len(adapters) > 1 and server.dialect.name == "sdcpp" and not server.native:
        raise CapabilityNotSupportedError(
            f"lora_adapters: {len(adapters)} adapters, but this sd-server (no /sdcpp/v1 job API: 0.4.5 or older) "
            "drops all but the last of a request's adapters without an error; send one adapter per call"
        )
    listed = yield from listed_adapters(root, server)
    if server.dialect.name == "abstractvision":
        return [
            {**entry, "source": _offered(spec, f"lora_adapters[{index}]", listed)}
            for index, (spec, entry) in enumerate(zip(adapters, describe(adapters), strict=True))
        ]
    return request_loras(adapters, listed)


def _offered(spec: LoRAAdapterSpec, field: str, listed: Sequence[ProviderAdapterInfo]) -> str:
    """``spec.source`` when ``abstractvision serve`` lists it (with that ``weight_name``), else the typed error."""
    if any(info.id == spec.source and spec.weight_name in (None, info.weight_name) for info in listed):
        return spec.source
    raise _not_offered(spec.source, spec, field, listed, "abstractvision serve", "the served backend's lora_dir")


def request_loras(adapters: Sequence[LoRAAdapterSpec], listed: Sequence[ProviderAdapterInfo]) -> list[dict[str, Any]]:
    """The ``lora`` list for ``adapters``: each source (with its ``subfolder``/``weight_name``) must be a
    listed path, that path without its suffix, or a listed name that only one file has."""
    return [
        {"path": _match(spec, f"lora_adapters[{index}]", listed), "multiplier": spec.scale}
        for index, spec in enumerate(adapters)
    ]


def _match(spec: LoRAAdapterSpec, field: str, listed: Sequence[ProviderAdapterInfo]) -> str:
    wanted = "/".join(
        part.strip("/").replace("\\", "/") for part in (spec.source, spec.subfolder, spec.weight_name) if part
    )
    for info in listed:
        if wanted in (info.path, info.id):
            return info.path  # type: ignore[return-value]
    named = [info.path for info in listed if info.raw.get("name") == wanted]
    if len(named) == 1:
        return named[0]  # type: ignore[return-value]
    if named:
        raise InvalidRequestError(
            f"{field}.source: sd-server has {len(named)} adapters named {wanted!r} ({', '.join(named[:_SHOWN])}); "
            "give the path",
            field=f"{field}.source",
        )
    raise _not_offered(
        wanted, spec, field, listed, "sd-server", "the folder sd-server was started with (--lora-model-dir)"
    )


def _not_offered(
    wanted: str, spec: LoRAAdapterSpec, field: str, listed: Sequence[ProviderAdapterInfo], server: str, folder: str
) -> AdapterNotAvailableError:
    shown = ", ".join(str(info.id) for info in listed[:_SHOWN]) + (", ..." if len(listed) > _SHOWN else "")
    return AdapterNotAvailableError(
        f"{field}.source: {server} offers no adapter {wanted!r} (it lists: {shown or 'none'}); put the file in "
        f"{folder}, or pick one from list_provider_adapters()",
        adapter=spec.source,
    )


__all__ = [
    "ADAPTERS",
    "CAPABILITIES",
    "MAX_LISTED",
    "SDAPI_LORAS",
    "listed_adapters",
    "parse_abstractvision_listing",
    "parse_listing",
    "request_loras",
    "server_loras",
    "takes_adapters",
]
