"""The server answers over a real socket, in this process and as its own process."""

from __future__ import annotations

import httpx


def test_in_process_server_generates(live_server, slow_backend):
    server = live_server(slow_backend)
    reply = httpx.post(f"{server.base_url}/images/generations", json={"prompt": "a cat", "seed": 7}, timeout=30)
    assert reply.status_code == 200, reply.text
    assert reply.json()["data"][0]["seed"] == 7


def test_server_process_generates(server_process):
    server = server_process("--provider", "slow", "--slow-step-s", "0.01")
    reply = httpx.post(f"{server.base_url}/images/generations", json={"prompt": "a cat", "n": 2}, timeout=30)
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["data"]) == 2
    assert server.terminate() in (0, -15)  # uvicorn re-raises SIGTERM after its graceful shutdown
    assert "Application shutdown complete" in server.output()
