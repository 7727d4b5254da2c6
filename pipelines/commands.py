"""Running an external command without a shell, with a timeout and a bounded output tail."""

import contextlib
import logging
import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

logger = logging.getLogger(__name__)

# The end of a command's output that is kept, in characters.
OUTPUT_TAIL_CHARS = 4000


@dataclass
class CommandResult:
    arguments: list
    started_at: datetime
    finished_at: datetime
    exit_code: int | None = None
    timed_out: bool = False
    error: str = ""
    output_tail: str = ""


def run_command(arguments, *, timeout):
    """Run `arguments` (a list, no shell) for at most `timeout` seconds and return the result.

    Standard output and standard error go to one temporary file, so a command that writes a lot
    uses disk, not memory, and only the last OUTPUT_TAIL_CHARS characters are kept. The command
    runs in a process group of its own, and a timeout kills the whole group, so child
    processes that hold the output open do not keep the run going.
    """
    started_at = timezone.now()
    with tempfile.TemporaryFile() as output:
        try:
            process = subprocess.Popen(  # noqa: S603  (an argument list, never a shell)
                arguments,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            logger.warning("command %s could not start: %s", arguments, error)
            return CommandResult(
                arguments=arguments,
                started_at=started_at,
                finished_at=timezone.now(),
                error=f"The command could not start: {error}.",
            )
        timed_out = False
        try:
            exit_code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(process)
            process.wait()
            exit_code = None
        return CommandResult(
            arguments=arguments,
            started_at=started_at,
            finished_at=timezone.now(),
            exit_code=exit_code,
            timed_out=timed_out,
            output_tail=_read_tail(output),
        )


def _kill_group(process):
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _read_tail(output):
    size = output.seek(0, os.SEEK_END)
    # Four bytes per character is the longest UTF-8 sequence, so this many bytes always contain
    # the last OUTPUT_TAIL_CHARS characters.
    output.seek(max(0, size - 4 * OUTPUT_TAIL_CHARS))
    text = output.read().decode("utf-8", errors="replace")
    return text[-OUTPUT_TAIL_CHARS:]
