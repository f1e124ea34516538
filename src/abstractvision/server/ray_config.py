"""What a Ray Serve deployment of the server is made of, without importing Ray.

:class:`RayOptions` declares the scaling settings like every other setting (variable, flag, help),
so ``abstractvision serve --ray`` builds its flags from them and ``serve run
abstractvision.server.ray:app key=value`` reads the same names; :class:`RayDeployment` is the
picklable whole that both Ray deployments receive. The Ray-importing half is
:mod:`abstractvision.server.ray`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import declared_settings, setting
from ..errors import BackendNotConfiguredError


@dataclass(frozen=True)
class RayOptions:
    """How the engine replicas scale and what each may use."""

    address: str | None = setting(
        env="ABSTRACTVISION_RAY_ADDRESS",
        flag="--ray-address",
        help="Ray cluster to join (host:6379, ray://host:10001, or auto for the one `ray start` began here); "
        "default: start a local Ray.",
    )
    replicas: int = setting(1, env="ABSTRACTVISION_RAY_REPLICAS", help="Engine replicas (fixed count).")
    min_replicas: int | None = setting(
        env="ABSTRACTVISION_RAY_MIN_REPLICAS", help="Autoscaling: fewest engine replicas (0 scales to zero)."
    )
    max_replicas: int | None = setting(env="ABSTRACTVISION_RAY_MAX_REPLICAS", help="Autoscaling: most engine replicas.")
    target_ongoing_requests: float = setting(
        1.0,
        env="ABSTRACTVISION_RAY_TARGET_ONGOING_REQUESTS",
        help="Autoscaling: requests per replica (running + queued) Ray aims for.",
    )
    gpus_per_replica: float | None = setting(
        env="ABSTRACTVISION_RAY_GPUS_PER_REPLICA",
        help="GPUs each engine replica reserves (default: 1 where the cluster has GPUs, else 0).",
    )
    gpu_memory_gb: float | None = setting(
        env="ABSTRACTVISION_RAY_GPU_MEMORY_GB",
        help="GPU memory one replica may use (torch is held to it): required with a fractional --gpus-per-replica.",
    )
    cpus_per_replica: float = setting(
        1.0, env="ABSTRACTVISION_RAY_CPUS_PER_REPLICA", help="CPUs each replica reserves."
    )
    max_models_per_replica: int = setting(
        1, env="ABSTRACTVISION_RAY_MAX_MODELS_PER_REPLICA", help="Models one replica keeps loaded (LRU beyond)."
    )

    def __post_init__(self) -> None:
        if self.gpus_per_replica is not None and 0 < self.gpus_per_replica < 1 and not self.gpu_memory_gb:
            raise BackendNotConfiguredError(
                f"--gpus-per-replica {self.gpus_per_replica} shares a GPU, and Ray does not enforce memory: "
                "state what each replica may use with --gpu-memory-gb"
            )
        if self.max_models_per_replica < 1:
            raise BackendNotConfiguredError("--max-models-per-replica must be at least 1")
        if self.min_replicas is not None and self.max_replicas is not None and self.max_replicas < self.min_replicas:
            raise BackendNotConfiguredError("--max-replicas must be at least --min-replicas")

    @property
    def autoscaling(self) -> dict[str, Any] | None:
        """Ray's ``autoscaling_config``, or ``None`` for a fixed number of replicas."""
        if self.min_replicas is None and self.max_replicas is None:
            return None
        low = self.min_replicas if self.min_replicas is not None else 1
        return {
            "min_replicas": low,
            "max_replicas": max(low, 1, self.max_replicas if self.max_replicas is not None else low),
            "target_ongoing_requests": self.target_ongoing_requests,
        }

    @property
    def most_replicas(self) -> int:
        scaling = self.autoscaling
        return scaling["max_replicas"] if scaling else max(1, self.replicas)


@dataclass(frozen=True)
class RayDeployment:
    """Everything both deployments need, picklable.

    ``models`` maps each served model id to the value of the backend's model setting
    (``model_setting``: ``model_id`` for Diffusers, ``model`` for sd.cpp); ``settings`` are the
    backend's other explicit settings, ``server`` the :class:`ServerConfig` fields.
    """

    provider: str
    models: Mapping[str, str]
    model_setting: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    server: Mapping[str, Any] = field(default_factory=dict)
    ray: RayOptions = field(default_factory=RayOptions)
    #: The backend's table entry (target, extra, description), so a backend registered at run time in
    #: the driver (``register_backend``) is known in the replicas' processes too.
    backend_entry: tuple[str, str | None, str] | None = None

    def __post_init__(self) -> None:
        if not self.models:
            raise BackendNotConfiguredError("serve --ray needs at least one model (--model, repeatable)")
        if self.backend_entry is None:
            from ..backends import KNOWN_BACKENDS, canonical_backend_name

            entry = KNOWN_BACKENDS[canonical_backend_name(self.provider)]
            object.__setattr__(self, "backend_entry", (entry.backend, entry.extra, entry.description))

    def __repr__(self) -> str:  # settings and server may hold keys
        return f"RayDeployment(provider={self.provider!r}, models={list(self.models)!r}, ray={self.ray!r})"

    @property
    def model_ids(self) -> tuple[str, ...]:
        return tuple(self.models)

    def build_backend(self, model: str) -> Any:
        """A backend for one served model (built, not loaded), in whichever process this runs."""
        from ..backends import create_backend, register_backend

        target, extra, description = self.backend_entry
        register_backend(self.provider, target, extra=extra, description=description)  # known already: a no-op

        return create_backend(self.provider, **{**self.settings, self.model_setting: self.models[model]})


def deployment_for(
    provider: str,
    models: list[str],
    settings: Mapping[str, Any],
    server: Mapping[str, Any],
    ray: Mapping[str, Any],
) -> RayDeployment:
    """The deployment ``serve --ray`` and :func:`deployment_from_args` both build: served ids for the
    models (a file's stem), and which backend setting names the model (the one behind ``--model``)."""
    from ..backends import get_backend_config_class
    from .settings import model_label

    declared = declared_settings(get_backend_config_class(provider) or object)
    model_setting = next((s.name for s in declared if s.param == "model"), None)
    if model_setting is None:
        raise BackendNotConfiguredError(f"the {provider} backend has no --model setting to serve models by")
    settings = dict(settings)
    given = settings.pop(model_setting, None)
    models = list(models) or ([given] if given else [])
    served = {model_label(model): model for model in models}
    return RayDeployment(provider, served, model_setting, settings, dict(server), RayOptions(**ray))


def deployment_from_args(args: Mapping[str, Any]) -> RayDeployment:
    """A deployment from ``key=value`` text (``serve run``, ``serve deploy`` files, KubeRay), each value
    read like its variable would be. Keys: ``provider``, ``model`` (a comma list, or a list), a setting of
    :class:`RayOptions`, of the server or of the backend (by name, or by its flag's name)."""
    from ..backends import get_backend_config_class
    from .settings import ServerConfig

    args = dict(args)
    provider = args.pop("provider", None)
    if not provider:
        raise BackendNotConfiguredError("provider= is required (openai, diffusers, sdcpp or a plugin)")
    given = args.pop("model", None) or ()
    given = given.split(",") if isinstance(given, str) else given  # a config file may give a list
    models = [str(model).strip() for model in given if str(model).strip()]
    tables = {
        "ray": {s.name: s for s in declared_settings(RayOptions)},
        "server": {s.name: s for s in declared_settings(ServerConfig)},
        "backend": {
            key: s for s in declared_settings(get_backend_config_class(provider) or object) for key in (s.name, s.param)
        },
    }
    values: dict[str, dict[str, Any]] = {"ray": {}, "server": {}, "backend": {}}
    for key, raw in args.items():
        owner = next((name for name, table in tables.items() if key in table), None)
        if owner is None:
            raise BackendNotConfiguredError(
                f"unknown argument {key}=: not a Ray option, a server setting or a setting of the {provider} backend"
            )
        declared = tables[owner][key]
        values[owner][declared.name] = declared.parse(raw, key)
    return deployment_for(provider, models, values["backend"], values["server"], values["ray"])


__all__ = ["RayDeployment", "RayOptions", "deployment_for", "deployment_from_args"]
