"""CLI mode: run the ``sd-cli`` executable once per image.

Three jobs live here: building the argv from an :class:`SdcppJob`, running the process (timeout
and cancellation kill its whole process group, and it is always reaped), and turning sd-cli's
progress bars into step events.

Why a process per image: sd-cli is the build users get with GPU support (CUDA, Metal, Vulkan), and
a crash, a leak or an out-of-memory kill stays in the child. The price is loading the model on every
call, which the Python mode avoids.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import EngineError, GenerationCancelledError, RequestTimeoutError
from ..progress import ProgressReporter
from ._sdcpp_job import SdcppJob

#: ``  |=====>     | 3/20 - 1.23it/s`` (sd.cpp redraws it with ``\r``).
_PROGRESS_BAR = re.compile(r"\|[=>\s]*\|\s*(\d+)/(\d+)")
#: sd.cpp draws the same bar while loading tensors; sampling bars follow this line.
_SAMPLING_STARTS = re.compile(r"generating image|sampling using|IMG2IMG|TXT2IMG")
_SAMPLING_ENDS = re.compile(r"sampling completed")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TAIL_LINES = 25
_POLL_S = 0.05


def option_flag(name: str) -> str:
    """``sampling_method`` -> ``--sampling-method`` (sd-cli's own spelling for generation options)."""
    return "--" + name.replace("_", "-")


def build_argv(
    executable: str,
    model_files: Sequence[tuple[str, str]],
    job: SdcppJob,
    output: Path,
    init_image: Path | None = None,
    mask: Path | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The sd-cli command line for ``job``. ``model_files`` is ``(flag, absolute path)`` pairs."""
    argv = [executable]
    for flag, path in model_files:
        argv += [flag, path]
    argv += ["-p", job.prompt]
    if job.negative_prompt:
        argv += ["-n", job.negative_prompt]
    argv += ["-W", str(job.width), "-H", str(job.height), "--steps", str(job.steps)]
    argv += ["-s", str(job.seed), "--cfg-scale", repr(job.cfg_scale)]
    if init_image is not None:
        argv += ["-i", str(init_image), "--strength", repr(job.strength)]
    if mask is not None:
        argv += ["--mask", str(mask)]
    for name, value in job.options.items():
        if name == "strength":  # already placed with the init image
            continue
        if value is True:
            argv.append(option_flag(name))
        elif value is not False:
            argv += [option_flag(name), str(value)]
    argv += list(extra_args)
    argv += ["-o", str(output)]
    return argv


class StepParser:
    """Turns sd-cli output lines into ``(step, total)`` sampling progress; ignores loading bars."""

    def __init__(self) -> None:
        self.sampling = False

    def feed(self, line: str) -> tuple[int, int] | None:
        if _SAMPLING_STARTS.search(line):
            self.sampling = True
            return None
        if _SAMPLING_ENDS.search(line):
            self.sampling = False
            return None
        match = _PROGRESS_BAR.search(line) if self.sampling else None
        return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass(frozen=True)
class ProcessResult:
    exit_code: int
    output_tail: str
    elapsed_s: float


def _pump(stream, lines: queue.Queue) -> None:
    """Split a byte stream on ``\\r`` and ``\\n`` (progress bars use ``\\r``) into queued lines."""
    pending = b""
    try:
        for chunk in iter(lambda: stream.read1(65536), b""):
            parts = re.split(rb"[\r\n]", pending + chunk)
            pending = parts.pop()
            for part in parts:
                if part.strip():
                    lines.put(part.decode("utf-8", "replace"))
        if pending.strip():
            lines.put(pending.decode("utf-8", "replace"))
    finally:
        lines.put(None)


def kill_process_group(process: subprocess.Popen) -> None:
    """SIGKILL the process and everything it started, then reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def run_process(
    argv: Sequence[str],
    *,
    cwd: str | Path,
    timeout_s: float | None,
    reporter: ProgressReporter,
) -> ProcessResult:
    """Run sd-cli, reporting its sampling steps; kill the whole group on timeout or cancellation.

    Progress callbacks run on the caller's thread (reader threads only queue lines), so a callback
    that raises :class:`GenerationCancelledError` stops the process like the cancel event does.
    """
    started = time.perf_counter()
    deadline = None if not timeout_s else started + timeout_s
    process = subprocess.Popen(
        list(argv),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # own process group: killpg reaches sd-cli's children too
    )
    lines: queue.Queue = queue.Queue()
    readers = [threading.Thread(target=_pump, args=(s, lines), daemon=True) for s in (process.stdout, process.stderr)]
    for reader in readers:
        reader.start()
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    parser = StepParser()
    open_streams = len(readers)
    try:
        while open_streams:
            if reporter.cancelled:
                raise GenerationCancelledError(f"{reporter.task} was cancelled by the caller; sd-cli was stopped")
            if deadline is not None and time.perf_counter() > deadline:
                raise RequestTimeoutError(
                    f"sd-cli ran longer than timeout_s={timeout_s:g} s and was killed; raise timeout_s "
                    "(ABSTRACTVISION_SDCPP_TIMEOUT_S) or use fewer steps / a smaller size",
                    timeout_s=timeout_s,
                )
            try:
                line = lines.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if line is None:
                open_streams -= 1
                continue
            line = _ANSI.sub("", line).rstrip()
            step = parser.feed(line)
            if step is not None:
                reporter.step(*step)
            elif not _PROGRESS_BAR.search(line):
                tail.append(line)
        exit_code = process.wait()
    except BaseException:
        kill_process_group(process)
        raise
    finally:
        for reader in readers:  # the pipes reach EOF once the process (group) is gone
            reader.join(timeout=5)
        for stream in (process.stdout, process.stderr):
            stream.close()
    return ProcessResult(exit_code, "\n".join(tail), time.perf_counter() - started)


def raise_for_exit(result: ProcessResult, output: Path) -> None:
    """An :class:`EngineError` with the exit code and the output's tail unless sd-cli made the image."""
    if result.exit_code == 0 and output.is_file() and output.stat().st_size > 0:
        return
    if result.exit_code < 0:
        why = f"was killed by signal {-result.exit_code}" + (
            " (out of memory?)" if -result.exit_code == signal.SIGKILL else ""
        )
    elif result.exit_code > 0:
        why = f"exited with code {result.exit_code}"
    else:
        why = "exited with code 0 but wrote no image"
    tail = result.output_tail or "(no output)"
    raise EngineError(f"sd-cli {why}; last output:\n{tail}", exit_code=result.exit_code, stderr_tail=result.output_tail)


__all__ = ["ProcessResult", "StepParser", "build_argv", "kill_process_group", "raise_for_exit", "run_process"]
