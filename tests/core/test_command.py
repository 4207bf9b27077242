"""run_command: the output cap (explicit, or the running slurper's), typed timeouts, exit statuses."""

from __future__ import annotations

import sys

import pytest

from slurpers.api import CommandTimeout, SlurperError, output_limit, run_command


def test_the_cap_comes_from_the_running_slurper_unless_given() -> None:
    with (
        output_limit(2048),
        pytest.raises(SlurperError, match=r"^yes printed more than 2 KiB \(the slurper's max_output\)"),
    ):
        run_command(["yes"], timeout=30)
    # an explicit cap wins over the slurper's; output within it is returned whole
    with output_limit(2048):
        result = run_command([sys.executable, "-c", "print('x' * 5000)"], timeout=30, max_output=10_000)
    assert result.stdout == "x" * 5000 + "\n" and result.returncode == 0


def test_stderr_counts_towards_the_cap() -> None:
    code = "import sys; sys.stderr.write('e' * 3000)"
    with pytest.raises(SlurperError, match="printed more than 2 KiB"):
        run_command([sys.executable, "-c", code], timeout=30, max_output=2048)


def test_a_timeout_is_a_command_timeout_naming_the_command_and_the_time() -> None:
    with pytest.raises(CommandTimeout, match=r"^sleep timed out after 0\.5 s$"):
        run_command(["sleep", "30"], timeout=0.5)


@pytest.mark.parametrize(
    ("argv", "check", "expected"),
    [
        (["sh", "-c", "echo bad input >&2; exit 3"], True, "sh exited with status 3"),
        (["/nonexistent/plugin"], True, "cannot run /nonexistent/plugin: No such file or directory"),
    ],
)
def test_failures_name_the_command(argv: list[str], check: bool, expected: str) -> None:
    with pytest.raises(SlurperError, match=expected):
        run_command(argv, timeout=30, check=check)


def test_unchecked_status_and_non_utf8_output_are_returned() -> None:
    result = run_command(["sh", "-c", r"printf 'caf\351\n'; exit 4"], timeout=30, check=False)
    assert result.returncode == 4 and result.stdout == "caf\ufffd\n"
