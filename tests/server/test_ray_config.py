"""What a Ray deployment of the server is made of, without a cluster: the ``key=value`` arguments of
``serve run abstractvision.server.ray:app`` (and ``serve deploy`` files, KubeRay), the scaling rules,
and the ``serve`` flags that only make sense with ``--ray``."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import click
import pytest

from abstractvision.errors import BackendNotConfiguredError
from abstractvision.server.ray_config import RayOptions, deployment_from_args


@pytest.fixture(autouse=True)
def slow_registered():
    from abstractvision.backends import register_backend, unregister_backend

    register_backend("slow", "abstractvision.testing.slow:SlowBackend", description="slow test backend")
    yield
    unregister_backend("slow")


def test_arguments_are_read_like_their_variables_and_sorted_to_their_owner():
    deployment = deployment_from_args(
        {
            "provider": "slow",
            "model": "slow-a, slow-b,",
            "replicas": "2",
            "max_models_per_replica": "2",
            "cpus_per_replica": "0.5",
            "slow_step_s": "0.5",  # a backend setting by its flag's name...
            "steps": "3",  # ...or by its own
            "api_keys": "key-one,key-two",
            "max_queue": "5",
        }
    )
    assert deployment.provider == "slow" and deployment.model_ids == ("slow-a", "slow-b")
    assert deployment.models == {"slow-a": "slow-a", "slow-b": "slow-b"} and deployment.model_setting == "model_id"
    assert dict(deployment.settings) == {"step_s": 0.5, "steps": 3}
    assert dict(deployment.server) == {"api_keys": ("key-one", "key-two"), "max_queue": 5}
    assert deployment.ray == RayOptions(replicas=2, max_models_per_replica=2, cpus_per_replica=0.5)
    assert deployment.ray.autoscaling is None and deployment.ray.most_replicas == 2
    backend = deployment.build_backend("slow-b")
    assert (backend.config.model_id, backend.config.step_s, backend.config.steps) == ("slow-b", 0.5, 3)


def test_the_deployment_crosses_to_other_processes_and_never_shows_its_keys():
    deployment = deployment_from_args({"provider": "slow", "model": "slow-a", "api_keys": "sk-very-secret"})
    again = pickle.loads(pickle.dumps(deployment))
    assert again.server == deployment.server and again.backend_entry == deployment.backend_entry
    assert again.backend_entry[0] == "abstractvision.testing.slow:SlowBackend"  # replicas register it from this
    assert "sk-very-secret" not in repr(deployment)


def test_min_and_max_replicas_make_an_autoscaling_config():
    deployment = deployment_from_args(
        {"provider": "slow", "model": "a", "min_replicas": "0", "max_replicas": "4", "target_ongoing_requests": "2"}
    )
    assert deployment.ray.autoscaling == {"min_replicas": 0, "max_replicas": 4, "target_ongoing_requests": 2.0}
    assert deployment.ray.most_replicas == 4
    assert RayOptions(max_replicas=3).autoscaling["min_replicas"] == 1  # one kept warm unless 0 is asked


@pytest.mark.parametrize(
    "args, message",
    [
        ({"model": "a"}, "provider= is required"),
        ({"provider": "slow"}, "at least one model"),
        ({"provider": "nope", "model": "a"}, "unknown backend 'nope'"),
        ({"provider": "slow", "model": "a", "bogus": "1"}, "unknown argument bogus="),
        ({"provider": "slow", "model": "a", "replicas": "two"}, "replicas='two' is not an integer"),
        ({"provider": "slow", "model": "a", "gpus_per_replica": "0.5"}, "--gpu-memory-gb"),
        ({"provider": "slow", "model": "a", "max_models_per_replica": "0"}, "--max-models-per-replica must be"),
        ({"provider": "slow", "model": "a", "min_replicas": "3", "max_replicas": "2"}, "--max-replicas must be"),
    ],
)
def test_bad_arguments_are_refused_naming_the_fix(args, message):
    with pytest.raises(BackendNotConfiguredError, match=message):
        deployment_from_args(args)


def test_a_fraction_of_a_gpu_is_accepted_with_a_memory_budget():
    options = deployment_from_args({"provider": "slow", "model": "a", "gpus_per_replica": "0.5", "gpu_memory_gb": "20"})
    assert (options.ray.gpus_per_replica, options.ray.gpu_memory_gb) == (0.5, 20.0)


def test_the_application_builder_binds_the_ingress_to_the_engines():
    pytest.importorskip("ray.serve", reason='needs pip install "abstractvision[ray]"')
    from ray.serve import Application

    from abstractvision.server.ray import app

    application = app({"provider": "slow", "model": "slow-a,slow-b", "replicas": "3", "gpus_per_replica": "0"})
    assert isinstance(application, Application)


def test_the_builder_asks_for_gpus_per_replica_before_ray_is_connected():
    """``serve run`` builds the application before it connects to Ray: no guessing the cluster's
    GPUs then (a fresh interpreter: this session's tests may have a Ray cluster running)."""
    pytest.importorskip("ray.serve", reason='needs pip install "abstractvision[ray]"')
    code = "from abstractvision.server.ray import app\napp({'provider': 'openai', 'model': 'gpt-image-1'})"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "abstractvision.errors.BackendNotConfiguredError: gpus_per_replica= is required here: the application is "
        "built before Ray is connected, so the cluster's GPUs cannot be seen (gpus_per_replica=1 for a GPU each, "
        "0 for CPU only)"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (("--replicas", "2"), "--replicas only apply with --ray"),
        (("--model", "a", "--model", "b"), "several --model values need --ray"),
    ],
)
def test_ray_only_flags_need_ray(tmp_path, args, message):
    from abstractvision.cli.serve import serve, served_app

    context = serve.make_context("serve", ["--provider", "slow", "--store", str(tmp_path / "s"), *args])
    with pytest.raises(click.UsageError, match=message):
        served_app(dict(context.params))


def _deploy_page_arguments() -> list[dict]:
    """The builder arguments docs/deploy.md shows: each ``serve run ...:app k=v`` line, and each
    application's ``args`` in its YAML (``serve deploy`` files, a RayService's ``serveConfigV2``)."""
    import shlex

    yaml = pytest.importorskip("yaml", reason="PyYAML comes with the [ray] extra")
    text = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    blocks = text.split("```")[1::2]
    found = [
        dict(word.split("=", 1) for word in shlex.split(line)[3:])
        for block in blocks
        if block.startswith("bash")
        for line in block.splitlines()
        if line.startswith("serve run abstractvision.server.ray:app ")
    ]
    for block in (block.removeprefix("yaml") for block in blocks if block.startswith("yaml")):
        document = yaml.safe_load(block)
        config = yaml.safe_load(document["spec"]["serveConfigV2"]) if "spec" in document else document
        found += [application["args"] for application in config["applications"]]
    return found


def test_the_deploy_pages_builder_arguments_are_accepted():
    arguments = _deploy_page_arguments()
    assert len(arguments) == 3  # serve run, serve deploy, RayService
    for args in arguments:
        deployment = deployment_from_args(args)
        assert deployment.ray.gpus_per_replica == 1 and len(deployment.model_ids) >= 1
