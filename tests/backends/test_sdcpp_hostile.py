"""stable-diffusion.cpp against an engine that misbehaves: deadlines, cancel, output and argv limits hold.

A real process (the fake ``sd-cli`` script in a hostile mode) plays the engine: it leaves its pipes,
leaves a child holding them, writes something that is not an image, or dies by a signal. Every test
has a watchdog and an elapsed-time bound, so a regression fails instead of hanging.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from abstractvision import VisionManager
from abstractvision.backends._sdcpp_cli import run_process
from abstractvision.backends.stable_diffusion_cpp import StableDiffusionCppVisionBackend
from abstractvision.errors import EngineError, GenerationCancelledError, InvalidRequestError, RequestTimeoutError
from abstractvision.media import inspect_image
from abstractvision.progress import as_reporter
from abstractvision.types import ImageGenerationRequest

SMALL = {"width": 64, "height": 64, "steps": 3, "seed": 11}
LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's per-argument limit")
#: Linux's MAX_ARG_STRLEN: 32 pages, the terminating NUL included.
MAX_ARG_STRLEN = 32 * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture
def backend(fake_sd_cli, model_file):
    return StableDiffusionCppVisionBackend(model=str(model_file), sd_cli_path=str(fake_sd_cli.path), mode="cli")


def pid_gone(pid: int, within_s: float = 2.0) -> bool:
    """Dead, or a zombie (re-parented leftovers are reaped by init shortly after)."""
    ends = time.perf_counter() + within_s
    while time.perf_counter() < ends:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False


def pids(fake_sd_cli) -> list[int]:
    for _ in range(250):
        if fake_sd_cli.pids.exists() and fake_sd_cli.pids.read_text().strip():
            return [int(pid) for pid in fake_sd_cli.pids.read_text().split()]
        time.sleep(0.02)
    raise AssertionError("the fake sd-cli never wrote its pids")


# ---- deadlines and cancel in every phase ----------------------------------------------------------
@pytest.mark.timeout(30)
def test_timeout_holds_after_sd_cli_sends_its_output_to_a_file(fake_sd_cli, model_file):
    fake_sd_cli.behave("closepipes")  # exec >sd-cli.log 2>&1, then sleeps 600 s
    backend = StableDiffusionCppVisionBackend(model=str(model_file), sd_cli_path=str(fake_sd_cli.path), timeout_s=1.0)
    started = time.perf_counter()
    with pytest.raises(RequestTimeoutError) as info:
        VisionManager(backend=backend).generate_image("a cat", **SMALL)
    assert time.perf_counter() - started < 5
    assert info.value.timeout_s == 1.0
    assert pid_gone(pids(fake_sd_cli)[0])


@pytest.mark.timeout(30)
def test_cancel_holds_after_sd_cli_sends_its_output_to_a_file(fake_sd_cli, backend):
    fake_sd_cli.behave("closepipes")
    cancel = threading.Event()
    timer = threading.Timer(0.5, cancel.set)
    timer.start()
    started = time.perf_counter()
    try:
        with pytest.raises(GenerationCancelledError, match="sd-cli was stopped"):
            VisionManager(backend=backend).generate_image("a cat", cancel=cancel, **SMALL)
    finally:
        timer.cancel()
    assert time.perf_counter() - started < 5
    assert pid_gone(pids(fake_sd_cli)[0])


@pytest.mark.timeout(30)
def test_an_image_made_after_the_pipes_were_left_is_returned(fake_sd_cli, backend):
    fake_sd_cli.behave("closepipes-late")  # leaves the pipes, makes the image 1 s later
    started = time.perf_counter()
    asset = VisionManager(backend=backend).generate_image("a cat", **SMALL)
    assert time.perf_counter() - started < 10
    assert inspect_image(asset.data).width == 64 and asset.mime_type == "image/png"


@pytest.mark.timeout(30)
def test_a_child_holding_the_pipes_neither_holds_the_call_nor_outlives_it(fake_sd_cli, backend):
    fake_sd_cli.behave("grandchild")  # its child inherits stdout/stderr and sleeps 60 s
    events = []
    started = time.perf_counter()
    asset = VisionManager(backend=backend).generate_image("a cat", on_progress=events.append, **SMALL)
    assert time.perf_counter() - started < 5
    assert inspect_image(asset.data).height == 64
    assert [e.step for e in events if e.phase == "step"] == [1, 2, 3]  # output before the exit was read
    sd_cli_pid, child_pid = pids(fake_sd_cli)
    assert pid_gone(sd_cli_pid) and pid_gone(child_pid)


# ---- what comes back must be an image ---------------------------------------------------------------
@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", ["textimage", "badpng"])
def test_output_that_is_not_an_image_is_an_engine_error(fake_sd_cli, backend, mode):
    fake_sd_cli.behave(mode)
    with pytest.raises(EngineError) as info:
        VisionManager(backend=backend).generate_image("a cat", **SMALL)
    message = str(info.value)
    assert "not a valid image" in message and "sampling completed" in message  # the output's tail
    assert info.value.exit_code == 0


@pytest.mark.timeout(30)
def test_sd_cli_killed_by_a_signal_names_it(fake_sd_cli, backend):
    fake_sd_cli.behave("killed")
    with pytest.raises(EngineError) as info:
        VisionManager(backend=backend).generate_image("a cat", **SMALL)
    assert info.value.exit_code == -9
    assert "killed by signal 9 (SIGKILL)" in str(info.value) and "out of memory" in str(info.value)


@pytest.mark.timeout(30)
def test_an_endless_output_line_is_cut(fake_sd_cli, backend):
    fake_sd_cli.behave("flood")  # 8 MB on stderr without a newline, then an error line, exit 3
    with pytest.raises(EngineError) as info:
        VisionManager(backend=backend).generate_image("a cat", **SMALL)
    assert "the real error" in info.value.stderr_tail
    assert len(info.value.stderr_tail) < 200_000


# ---- text a command line cannot carry ---------------------------------------------------------------
@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"prompt": "a cat \ud800"}, "prompt"),
        ({"negative_prompt": "blurry \udcff"}, "negative_prompt"),  # os.fsencode would pass it on as byte 0xff
        ({"negative_prompt": "a\x00b"}, "negative_prompt"),
        ({"extra": {"sampling_method": "euler\x00"}}, "extra['sampling_method']"),
    ],
    ids=["lone-surrogate", "escaped-surrogate", "nul", "nul-in-option"],
)
def test_text_the_engine_cannot_take_is_refused_before_spawning(backend, fake_sd_cli, fields, field):
    request = ImageGenerationRequest(**{"prompt": "a cat", **SMALL, **fields})
    with pytest.raises(InvalidRequestError) as info:
        backend.generate_image(request)  # the backend's own check: no manager in front
    assert info.value.field == field and field in str(info.value)
    assert fake_sd_cli.runs() == []


@LINUX
@pytest.mark.timeout(30)
@pytest.mark.parametrize("field", ["prompt", "negative_prompt"])
def test_a_prompt_longer_than_one_argument_may_be_is_refused(backend, fake_sd_cli, field):
    request = ImageGenerationRequest(**{"prompt": "a cat", **SMALL, field: "é" * (MAX_ARG_STRLEN // 2)})
    with pytest.raises(InvalidRequestError) as info:
        backend.generate_image(request)
    assert info.value.field == field
    assert "MAX_ARG_STRLEN" in str(info.value) and f"{MAX_ARG_STRLEN - 1} bytes" in str(info.value)
    assert "mode='python'" in str(info.value)
    assert fake_sd_cli.runs() == []


@LINUX
@pytest.mark.timeout(30)
def test_the_longest_prompt_one_argument_can_hold_runs(backend, fake_sd_cli):
    prompt = "a" * (MAX_ARG_STRLEN - 1)  # the terminating NUL takes the last byte
    backend.generate_image(ImageGenerationRequest(prompt, **SMALL))
    assert fake_sd_cli.last_argv()[fake_sd_cli.last_argv().index("-p") + 1] == prompt


@pytest.mark.timeout(30)
def test_a_command_line_over_arg_max_is_refused(backend, fake_sd_cli):
    per_option = 100_000
    count = os.sysconf("SC_ARG_MAX") // per_option + 1
    extra = {f"option_{index}": "x" * per_option for index in range(count)}
    extra["longest"] = "y" * (per_option + 1)
    with pytest.raises(InvalidRequestError) as info:
        backend.generate_image(ImageGenerationRequest("a cat", **SMALL, extra=extra))
    assert "ARG_MAX" in str(info.value) and info.value.field == "extra['longest']"
    assert fake_sd_cli.runs() == []


@LINUX
@pytest.mark.timeout(30)
@pytest.mark.parametrize("argument", ["x" * (2 * MAX_ARG_STRLEN), "nul\x00byte"], ids=["E2BIG", "nul"])
def test_what_the_os_refuses_to_spawn_is_an_invalid_request(fake_sd_cli, tmp_path, argument):
    """The fallback behind the checks: ``run_process`` maps the OS's own refusal."""
    with pytest.raises(InvalidRequestError, match="command line"):
        run_process([str(fake_sd_cli.path), argument], cwd=tmp_path, timeout_s=5, reporter=as_reporter(None, "t"))
    assert fake_sd_cli.runs() == []


@pytest.mark.timeout(30)
def test_an_sd_cli_that_cannot_start_is_an_engine_error(model_file, tmp_path):
    broken = tmp_path / "sd-cli"
    broken.write_text("#!/nonexistent/interpreter\n")  # executable, but exec() fails with ENOENT
    broken.chmod(0o755)
    backend = StableDiffusionCppVisionBackend(model=str(model_file), sd_cli_path=str(broken), mode="cli")
    with pytest.raises(EngineError, match="could not be started") as info:
        backend.generate_image(ImageGenerationRequest("a cat", **SMALL))
    assert str(broken) in str(info.value) and "ABSTRACTVISION_SDCPP_BIN" in str(info.value)


# ---- python mode: what cancel interrupts there -------------------------------------------------------
PROMPT = "a lighthouse at dusk"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_python_mode_a_queued_call_is_cancelled_while_another_runs(sd_python_backend):
    """The running C call cannot be interrupted, but a call waiting for the loaded context can."""
    from concurrent.futures import ThreadPoolExecutor

    manager = VisionManager(backend=sd_python_backend)
    running = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(
            manager.generate_image, PROMPT, width=64, height=64, steps=6, seed=1, on_progress=lambda e: running.set()
        )
        assert running.wait(120)
        cancel = threading.Event()
        timer = threading.Timer(0.3, cancel.set)
        timer.start()
        started = time.perf_counter()
        with pytest.raises(GenerationCancelledError):
            manager.generate_image(PROMPT, width=64, height=64, steps=6, seed=2, cancel=cancel)
        waited = time.perf_counter() - started
        still_running = not first.done()
        assert inspect_image(first.result().data).width == 64
    assert still_running and waited < 3  # refused while the other call ran, not after its own run


@pytest.mark.timeout(30)
def test_cancelling_the_awaiting_task_kills_sd_cli(fake_sd_cli, backend):
    """An abandoned async call (a client that hung up) must not keep the engine running."""
    import asyncio

    fake_sd_cli.behave("hang")

    async def abandon() -> list[int]:
        call = asyncio.ensure_future(VisionManager(backend=backend).agenerate_image("a cat", **SMALL))
        sd_cli = await asyncio.to_thread(pids, fake_sd_cli)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        return sd_cli

    started = time.perf_counter()
    sd_cli, child = asyncio.run(abandon())
    assert pid_gone(sd_cli) and pid_gone(child)
    assert time.perf_counter() - started < 10
