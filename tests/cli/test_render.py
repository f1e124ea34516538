"""The progress display: spinner with elapsed time until steps are known, then a bar with steps."""

from __future__ import annotations

import io

from cli_backends import EchoBackend
from rich.console import Console

from abstractvision import VisionManager
from abstractvision.cli._render import ProgressDisplay
from abstractvision.progress import ProgressReporter


def _terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=100, color_system=None), buffer


def test_local_steps_draw_a_bar_with_step_counts():
    console, buffer = _terminal()
    with ProgressDisplay("t2i", console=console) as display:
        reporter = ProgressReporter("text_to_image", display)
        reporter.start(total_steps=4)
        reporter.report("load", message="loading the pipeline")
        display._progress.refresh()
        assert "loading the pipeline" in buffer.getvalue()
        for step in range(1, 5):
            reporter.step(step, 4)
            display._progress.refresh()
        assert display._bar
        assert display._progress.tasks[0].completed == 4 and display._progress.tasks[0].total == 4
        assert display._progress.tasks[0].description == "t2i"
    assert "4/4 steps" in buffer.getvalue()


def test_a_remote_call_without_steps_keeps_the_spinner():
    console, buffer = _terminal()
    with ProgressDisplay("t2i", console=console) as display:
        reporter = ProgressReporter("text_to_image", display)
        reporter.start()
        display._progress.refresh()
        reporter.end()
        assert not display._bar
    assert "steps" not in buffer.getvalue() and "t2i" in buffer.getvalue() and "0:00:00" in buffer.getvalue()


def test_a_batch_counts_its_items_through_the_manager():
    console, buffer = _terminal()
    manager = VisionManager(backend=EchoBackend())
    with ProgressDisplay("t2i", total_items=3, console=console) as display:
        manager.generate_image_batch("cat", count=3, steps=2, on_progress=display)
        display._progress.refresh()
    assert "t2i 3/3" in buffer.getvalue()


def test_no_terminal_no_drawing():
    buffer = io.StringIO()
    with ProgressDisplay("t2i", console=Console(file=buffer)) as display:
        ProgressReporter("text_to_image", display).start(total_steps=2)
    assert buffer.getvalue() == ""
