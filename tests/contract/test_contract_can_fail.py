"""The contract suite can fail: each deliberately broken backend fails exactly the checks for its defect.

``broken_backends.py`` runs the shipped suite on an honest backend and on three broken ones (a lie
about capabilities, a key in ``repr``, an ignored cancel); it is run here through pytester, in this
process, and every outcome is compared with the expected one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

BROKEN = Path(__file__).with_name("broken_backends.py")

EXPECTED_FAILURES = {
    "TestHonestBackend": set(),
    "TestLyingBackend": {"test_capabilities_are_honest"},
    "TestLeakyBackend": {"test_no_secret_in_repr"},
    "TestCancelIgnoringBackend": {
        "test_cancel_from_progress_callback",
        "test_cancel_after_the_first_progress_event_stops_the_run",
    },
}

#: Words each expected failure's report carries, so a check fails for the defect and not another reason.
EXPECTED_REASONS = {
    ("TestLyingBackend", "test_capabilities_are_honest"): "LyingBackend claims text_to_video",
    ("TestLeakyBackend", "test_no_secret_in_repr"): "LeakyBackend(api_key=",
    ("TestCancelIgnoringBackend", "test_cancel_from_progress_callback"): "DID NOT RAISE",
    ("TestCancelIgnoringBackend", "test_cancel_after_the_first_progress_event_stops_the_run"): "the run finished",
}


@pytest.mark.timeout(120)
def test_each_broken_backend_fails_exactly_its_checks(pytester):
    result = pytester.runpytest(str(BROKEN), "--noconftest", "-p", "no:cacheprovider")
    passed, skipped, failed = result.reprec.listoutcomes()
    assert not skipped, [report.nodeid for report in skipped]

    outcomes: dict[str, dict[str, set[str]]] = {name: {"passed": set(), "failed": set()} for name in EXPECTED_FAILURES}
    for outcome, reports in (("passed", passed), ("failed", failed)):
        for report in reports:
            _, cls, test = report.nodeid.split("::")
            outcomes[cls][outcome].add(test.split("[")[0])

    checks = outcomes["TestHonestBackend"]["passed"]
    assert len(checks) >= 8, checks  # the whole suite ran on the honest backend
    for cls, expected in EXPECTED_FAILURES.items():
        assert outcomes[cls]["failed"] == expected, cls
        assert outcomes[cls]["passed"] == checks - expected, cls

    for report in failed:
        _, cls, test = report.nodeid.split("::")
        assert EXPECTED_REASONS[(cls, test)] in report.longreprtext, report.longreprtext
