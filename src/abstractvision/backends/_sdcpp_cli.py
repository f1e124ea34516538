"""CLI mode: run the ``sd-cli`` executable once per image.

The jobs here: building the argv from an :class:`SdcppJob` (and refusing, before spawning, text a
command line cannot carry), running the process, turning sd-cli's progress bars into step events,
and reading back the image it wrote.

Why a process per image: sd-cli is the build users get with GPU support (CUDA, Metal, Vulkan), and
a crash, a leak or an out-of-memory kill stays in the child. The price is loading the model on every
call, which the Python mode avoids.

The process is not trusted to behave. It runs in its own session (so its process group holds it and
everything it starts); the caller's deadline and cancel event are checked every ``_POLL_S`` in every
phase (running, pipes closed or handed to a file, output drained after exit); when the call ends,
for any reason, the whole group gets SIGKILL and sd-cli is reaped, so a child it left behind (even
one holding its pipes open) does not outlive the call (only a descendant that starts a session of
its own with ``setsid`` leaves the group). Its output is read without threads, in bounded lines, and
what it wrote to ``-o`` must decode as an image within the pixel limit.
"""

from __future__ import annotations

import errno
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from ..config import inherited_environment_bytes
from ..errors import EngineError, GenerationCancelledError, InvalidRequestError, RequestTimeoutError
from ..media import MAX_INPUT_PIXELS, inspect_image
from ..progress import ProgressReporter
from ._sdcpp_job import SdcppJob
from ._sdcpp_lora import prompt_with_tags

#: ``  |=====>     | 3/20 - 1.23it/s`` (sd.cpp redraws it with ``\r``).
_PROGRESS_BAR = re.compile(r"\|[=>\s]*\|\s*(\d+)/(\d+)")
#: sd.cpp draws the same bar while loading tensors; sampling bars follow this line.
_SAMPLING_STARTS = re.compile(r"generating image|sampling using|IMG2IMG|TXT2IMG")
_SAMPLING_ENDS = re.compile(r"sampling completed")
#: sd.cpp's upscaler logs this after each pass over the image.
_PASS_ENDS = re.compile(r"upscaled, taking")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TAIL_LINES = 25
#: Longest output line kept, in bytes: an engine may write without newlines forever.
_MAX_LINE = 4096
#: How often the deadline, the cancel event and the process are checked.
_POLL_S = 0.05
#: After sd-cli exits, how long its remaining output may still be read. What it wrote is already in
#: the pipes, so draining takes milliseconds; this only bounds a leftover child that keeps writing.
_DRAIN_S = 1.0
#: How long to wait for a SIGKILLed sd-cli to be reaped (a process stuck in the kernel, e.g. in a GPU
#: driver, dies only when it leaves it; Popen reaps it later then).
_REAP_S = 5.0
#: Linux limits each argv string to 32 pages (MAX_ARG_STRLEN) besides the total (ARG_MAX).
_MAX_ARG_STRLEN = 32 * os.sysconf("SC_PAGE_SIZE") if sys.platform.startswith("linux") else None
#: No 8-bit or 16-bit RGB(A) image within the pixel limit encodes larger (filters and chunks included).
_MAX_OUTPUT_BYTES = MAX_INPUT_PIXELS * 9


#: Image formats sd-cli reads directly; anything else is re-encoded as PNG first.
_CLI_IMAGE_SUFFIXES = {"image/png": ".png", "image/jpeg": ".jpg", "image/bmp": ".bmp"}


def write_input(folder: Path, stem: str, data: bytes) -> Path:
    """Write an input image where sd-cli can read it (formats it cannot read become PNG)."""
    from ..media import decode_image, encode_png, sniff_mime_type

    suffix = _CLI_IMAGE_SUFFIXES.get(sniff_mime_type(data) or "")
    if suffix is None:
        data, suffix = encode_png(decode_image(data, mode=None)), ".png"
    path = folder / f"{stem}{suffix}"
    path.write_bytes(data)
    return path


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
    lora_dir: Path | None = None,
) -> list[str]:
    """The sd-cli command line for ``job``. ``model_files`` is ``(flag, absolute path)`` pairs.

    With adapters, ``lora_dir`` is the call's folder of links (:mod:`._sdcpp_lora`) and the prompt
    carries their tags; ``--lora-model-dir`` comes after ``extra_args``, so that a folder given there
    cannot take its place (sd-cli keeps the last value of a flag)."""
    argv = [executable]
    for flag, path in model_files:
        argv += [flag, path]
    argv += ["-p", prompt_with_tags(job.prompt, job.loras)]
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
    if job.loras:
        argv += ["--lora-model-dir", str(lora_dir)]
    argv += ["-o", str(output)]
    return argv


def build_upscale_argv(
    executable: str, upscaler: Path, passes: int, image: Path, output: Path, extra_args: Sequence[str] = ()
) -> list[str]:
    """The sd-cli command line that upscales ``image`` with no diffusion model (``-M upscale``).

    ``extra_args`` go here too (threads, ``--upscale-tile-size``, ``--offload-to-cpu`` matter to it)."""
    argv = [executable, "-M", "upscale", "--upscale-model", str(upscaler), "--upscale-repeats", str(passes)]
    return [*argv, "-i", str(image), *extra_args, "-o", str(output)]


def check_command_line(argv: Sequence[str], fields: Mapping[str, str]) -> None:
    """Refuse, naming the field, text too long for a command line, before anything is spawned.

    On Linux one argument may hold at most MAX_ARG_STRLEN bytes, and argv plus the environment at
    most ARG_MAX. ``fields`` come from ``_sdcpp_job.text_fields`` and already passed ``check_text``.
    :func:`run_process` still maps what the OS refuses anyway (a wrapper script's interpreter
    line, a non-UTF-8 locale) to :class:`InvalidRequestError`.
    """
    sizes = {name: len(value.encode("utf-8")) for name, value in fields.items()}
    for name, size in sizes.items():
        if _MAX_ARG_STRLEN is not None and size >= _MAX_ARG_STRLEN:
            raise InvalidRequestError(
                f"{name} is {size} bytes; one command-line argument may hold at most {_MAX_ARG_STRLEN - 1} bytes "
                "on Linux (MAX_ARG_STRLEN): shorten it, or use mode='python', which passes it in memory",
                field=name,
            )
    total = sum(len(os.fsencode(arg)) + 1 + 8 for arg in argv) + inherited_environment_bytes() + 16
    limit = os.sysconf("SC_ARG_MAX")
    if total > limit and sizes:
        name = max(sizes, key=sizes.__getitem__)
        raise InvalidRequestError(
            f"the sd-cli command line with its environment would be {total} bytes, over this system's limit of "
            f"{limit} (ARG_MAX); {name} is the longest part ({sizes[name]} bytes): shorten it, or use mode='python'",
            field=name,
        )


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


class PassParser:
    """Upscale runs: one step per upscaler pass, counted from sd.cpp's log line after each.

    Why passes and not its tile bars: every pass draws its own bar over a growing number of
    tiles, so the bars do not add up to one count; passes do, and they also tell whether sd-cli
    really upscaled (it logs a model it cannot load, then saves the input unchanged, exit code 0).
    """

    def __init__(self, passes: int) -> None:
        self.passes = passes
        self.done = 0

    def feed(self, line: str) -> tuple[int, int] | None:
        if not _PASS_ENDS.search(line):
            return None
        self.done += 1
        return self.done, self.passes


@dataclass(frozen=True)
class ProcessResult:
    exit_code: int
    output_tail: str
    elapsed_s: float


class _Output:
    """sd-cli's stdout and stderr as lines, read without threads and never waiting past one poll.

    Lines split on ``\\r`` and ``\\n`` (progress bars use ``\\r``) and are cut to ``_MAX_LINE`` bytes, so
    neither a silent process nor an endless line can hold the caller.
    """

    def __init__(self, *streams) -> None:
        self._selector = selectors.DefaultSelector()
        self._pending: dict[int, bytes] = {}
        for stream in streams:
            self._selector.register(stream.fileno(), selectors.EVENT_READ)
            self._pending[stream.fileno()] = b""

    @property
    def open(self) -> bool:
        """Whether a pipe can still deliver output (EOF not yet seen on both)."""
        return bool(self._pending)

    def read(self, timeout: float) -> list[str] | None:
        """The lines that arrived within ``timeout``; ``None`` when nothing was ready."""
        ready = self._selector.select(timeout)
        if not ready:
            return None
        lines: list[bytes] = []
        for key, _ in ready:
            chunk = os.read(key.fd, 65536)
            parts = re.split(rb"[\r\n]", self._pending[key.fd] + chunk)
            rest = parts.pop()
            if chunk:
                self._pending[key.fd] = rest[-_MAX_LINE:]
            else:  # EOF
                self._selector.unregister(key.fd)
                del self._pending[key.fd]
                parts.append(rest)
            lines += parts
        return [line[:_MAX_LINE].decode("utf-8", "replace") for line in lines if line.strip()]

    def __enter__(self) -> _Output:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._selector.close()


def kill_process_group(process: subprocess.Popen) -> None:
    """SIGKILL the process and everything it started (its process group), then reap it.

    Safe after sd-cli was reaped: a process group's id cannot be given to a new process while a
    member lives, and an empty group answers ESRCH.
    """
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=_REAP_S)
    except subprocess.TimeoutExpired:
        pass


def _spawn(argv: Sequence[str], cwd: str | Path) -> subprocess.Popen:
    """Start sd-cli in its own session; what the OS refuses becomes a typed error."""
    try:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # own process group: killpg reaches sd-cli's children too
        )
    except ValueError as exc:  # a NUL byte, or text the filesystem encoding cannot carry
        raise InvalidRequestError(
            f"the request cannot be put on sd-cli's command line ({exc}); remove NUL characters and lone "
            "surrogates from the prompt and extra options"
        ) from None
    except OSError as exc:
        if exc.errno == errno.E2BIG:
            raise InvalidRequestError(
                "the sd-cli command line is longer than this system allows (E2BIG); shorten the prompt and "
                "extra options, or use mode='python', which passes them in memory"
            ) from None
        raise EngineError(
            f"sd-cli could not be started ({argv[0]}, cwd {cwd}): {exc}; check that sd_cli_path / "
            "ABSTRACTVISION_SDCPP_BIN is an sd-cli executable built for this machine"
        ) from exc


def _check_stop(reporter: ProgressReporter, deadline: float | None, timeout_s: float | None) -> None:
    if reporter.cancelled:
        raise GenerationCancelledError(f"{reporter.task} was cancelled by the caller; sd-cli was stopped")
    if deadline is not None and time.perf_counter() > deadline:
        raise RequestTimeoutError(
            f"sd-cli ran longer than timeout_s={timeout_s:g} s and was killed; raise timeout_s "
            "(ABSTRACTVISION_SDCPP_TIMEOUT_S) or use fewer steps / a smaller size",
            timeout_s=timeout_s,
        )


def run_process(
    argv: Sequence[str],
    *,
    cwd: str | Path,
    timeout_s: float | None,
    reporter: ProgressReporter,
    parser: StepParser | PassParser | None = None,
) -> ProcessResult:
    """Run sd-cli, reporting its sampling steps (or ``parser``'s), until it exits; kill its group on every way out.

    The deadline and the cancel event hold in every phase: while sd-cli writes, after it closed or
    redirected its pipes (it is then polled), and while its last output is drained. Once sd-cli has
    exited, output is read only until the pipes are empty (at most ``_DRAIN_S``), so a child that
    inherited the pipes cannot hold the call; the group kill then ends that child.

    Progress callbacks run on the caller's thread, so a callback that raises
    :class:`GenerationCancelledError` stops the process like the cancel event does.
    """
    started = time.perf_counter()
    deadline = None if not timeout_s else started + timeout_s
    process = _spawn(argv, cwd)
    try:
        with _Output(process.stdout, process.stderr) as output:
            exit_code, tail = _watch(process, output, reporter, deadline, timeout_s, parser or StepParser())
    finally:
        kill_process_group(process)
        for stream in (process.stdout, process.stderr):
            stream.close()
    return ProcessResult(exit_code, tail, time.perf_counter() - started)


def _watch(
    process: subprocess.Popen,
    output: _Output,
    reporter: ProgressReporter,
    deadline: float | None,
    timeout_s: float | None,
    parser: StepParser | PassParser,
) -> tuple[int, str]:
    """Follow sd-cli until it has exited and its output is read: ``(exit code, output tail)``."""
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    exit_code: int | None = None
    drain_ends = 0.0
    while exit_code is None or (output.open and time.perf_counter() < drain_ends):
        _check_stop(reporter, deadline, timeout_s)
        if exit_code is None:
            exit_code = process.poll()
            drain_ends = time.perf_counter() + _DRAIN_S
        if not output.open:  # pipes closed or handed off: only the process is left to watch
            try:
                exit_code = process.wait(timeout=_POLL_S)
            except subprocess.TimeoutExpired:
                pass
            continue
        lines = output.read(_POLL_S)
        if lines is None and exit_code is not None:
            break  # sd-cli is gone and its output read; whoever still holds the pipes gets killed
        for line in lines or ():
            line = _ANSI.sub("", line).rstrip()
            step = parser.feed(line)
            if step is not None:
                reporter.step(*step)
            elif not _PROGRESS_BAR.search(line):
                tail.append(line)
    return exit_code, "\n".join(tail)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def raise_for_exit(result: ProcessResult, output: Path) -> None:
    """An :class:`EngineError` with the exit code and the output's tail unless sd-cli made the image."""
    if result.exit_code == 0 and output.is_file() and output.stat().st_size > 0:
        return
    if result.exit_code < 0:
        number = -result.exit_code
        why = f"was killed by signal {number} ({_signal_name(number)})" + (
            ", likely out of memory" if number == signal.SIGKILL else ""
        )
    elif result.exit_code > 0:
        why = f"exited with code {result.exit_code}"
    else:
        why = "exited with code 0 but wrote no image"
    _fail(why, result)


def read_image(result: ProcessResult, output: Path) -> tuple[bytes, str]:
    """The image sd-cli wrote and its MIME type, once it decodes as an image within the pixel limit.

    Read up to ``_MAX_OUTPUT_BYTES`` only, so a file no image could need cannot flood memory.
    """
    raise_for_exit(result, output)
    with output.open("rb") as handle:
        data = handle.read(_MAX_OUTPUT_BYTES + 1)
    if len(data) > _MAX_OUTPUT_BYTES:
        _fail(f"wrote an output file over {_MAX_OUTPUT_BYTES} bytes, larger than any image within the limit", result)
    try:
        info = inspect_image(data, "sd-cli output", MAX_INPUT_PIXELS)
    except InvalidRequestError as exc:
        _fail(f"exited with code 0 but wrote something that is not a valid image ({exc})", result)
    return data, info.mime_type


def read_upscaled(result: ProcessResult, output: Path, parser: PassParser) -> tuple[bytes, str]:
    """:func:`read_image`, once every pass ran: sd-cli saves the input unchanged, exit code 0, when
    it cannot load the upscaler (and the last image made when a pass fails)."""
    data, mime_type = read_image(result, output)
    if parser.done < parser.passes:
        _fail(f"ran {parser.done} of {parser.passes} upscaler passes (is upscale_model an ESRGAN model?)", result)
    return data, mime_type


def _fail(why: str, result: ProcessResult) -> NoReturn:
    tail = result.output_tail or "(no output)"
    raise EngineError(f"sd-cli {why}; last output:\n{tail}", exit_code=result.exit_code, stderr_tail=result.output_tail)


__all__ = [
    "PassParser",
    "ProcessResult",
    "StepParser",
    "build_argv",
    "build_upscale_argv",
    "check_command_line",
    "kill_process_group",
    "raise_for_exit",
    "read_image",
    "read_upscaled",
    "run_process",
    "write_input",
]
