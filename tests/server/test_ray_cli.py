"""``abstractvision serve --ray`` as its own process: it starts a local Ray cluster, deploys the app,
says so, answers like the plain server, and stops on SIGTERM (its application and its cluster gone)."""

from __future__ import annotations

import httpx
import openai
import pytest

from fixtures.server_api import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]  # a Ray cluster of its own: ~30 s


def test_serve_ray_starts_answers_and_stops_on_sigterm(server_process, tmp_path):
    pytest.importorskip("ray.serve", reason='needs pip install "abstractvision[ray]"')
    key = "sk-ray-cli-0123456789"
    server = server_process(
        "--ray",
        "--provider", "slow",
        "--model", "slow-a",
        "--model", "slow-b",
        "--slow-step-s", "0.01",
        "--replicas", "2",
        "--cpus-per-replica", "0.25",
        "--max-models-per-replica", "2",
        "--api-key", key,
        "--store", str(tmp_path / "store"),
        timeout_s=120,
    )  # fmt: skip
    port = server.url.rsplit(":", 1)[1]
    banner = wait_for(  # printed once Ray says the application is ready, just after it first answers
        lambda: next((line for line in server.output().splitlines() if line.startswith("abstractvision serve")), None)
    )
    assert banner == (
        f"abstractvision serve --ray: http://127.0.0.1:{port}  models slow-a, slow-b (slow)  replicas 2  "
        "1 API key(s) required  ray local"
    )
    assert httpx.get(f"{server.base_url}/models", timeout=10).status_code == 401
    with openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=60) as api:
        assert [model.id for model in api.models.list().data] == ["slow-a", "slow-b"]
        result = api.images.generate(model="slow-b", prompt="a cat", extra_body={"seed": 5})
    assert result.data[0].seed == 5 and result.data[0].metadata["model"] == "slow-b"  # type: ignore[attr-defined]
    assert (tmp_path / "store" / "jobs.sqlite3").exists()  # the ingress keeps the records where it was told
    assert server.terminate(timeout_s=120) == 0
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{server.url}/healthz", timeout=2)
    assert key not in server.output()
