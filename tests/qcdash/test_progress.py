"""ProgressBar: redrawn in place on a terminal, one line per tenth of the work elsewhere."""

from io import StringIO

import pytest
from django.core.management.base import OutputWrapper

from qcdash.progress import ProgressBar


class TerminalStream(StringIO):
    def isatty(self):
        return True


def test_log_mode_prints_every_ten_percent():
    stream = StringIO()
    bar = ProgressBar(stream, 40, label="Folders", unit="folders")

    for done in range(41):
        bar.update(done)
    bar.finish()

    lines = stream.getvalue().splitlines()
    assert lines == [f"Folders: {4 * step}/40 folders ({10 * step}%)" for step in range(11)]


def test_log_mode_skips_steps_it_jumps_over():
    stream = StringIO()
    bar = ProgressBar(stream, 3, label="Folders", unit="folders")

    for done in range(4):
        bar.update(done)
    bar.finish()

    assert stream.getvalue().splitlines() == [
        "Folders: 0/3 folders (0%)",
        "Folders: 1/3 folders (33%)",
        "Folders: 2/3 folders (66%)",
        "Folders: 3/3 folders (100%)",
    ]


def test_log_mode_finish_prints_final_line_once():
    stream = StringIO()
    bar = ProgressBar(stream, 0, label="Folders", unit="folders")

    bar.finish()
    bar.finish()

    assert stream.getvalue() == "Folders: 0/0 folders (100%)\n"


def test_terminal_mode_redraws_with_carriage_return():
    stream = TerminalStream()
    bar = ProgressBar(stream, 4, label="Folders", unit="folders")

    bar.update(1)
    bar.update(1)
    bar.update(4)
    bar.finish()

    output = stream.getvalue()
    assert "\n" not in output[:-1]
    assert output.endswith("\n")
    assert output.count("\r") == 2
    assert output.split("\r")[1] == "Folders [" + "#" * 7 + "-" * 23 + "] 1/4 folders  25%"
    assert output.split("\r")[2] == "Folders [" + "#" * 30 + "] 4/4 folders 100%\n"


def test_terminal_mode_clear_erases_bar():
    stream = TerminalStream()
    bar = ProgressBar(stream, 2, label="Folders", unit="folders")
    bar.update(1)
    drawn = stream.getvalue()

    bar.clear()

    erased = stream.getvalue()[len(drawn) :]
    assert erased == "\r" + " " * (len(drawn) - 1) + "\r"


def test_output_wrapper_gets_no_extra_newlines():
    stream = TerminalStream()
    bar = ProgressBar(OutputWrapper(stream), 2, label="Folders", unit="folders")

    bar.update(1)
    bar.update(2)

    assert "\n" not in stream.getvalue()


def test_update_clamps_to_total():
    bar = ProgressBar(StringIO(), 5)

    bar.update(9)

    assert bar.done == 5
    assert bar.percent() == 100


def test_negative_total_rejected():
    with pytest.raises(ValueError, match="total must be 0 or more, not -1"):
        ProgressBar(StringIO(), -1)


def test_terminal_mode_clear_after_finish_writes_nothing():
    stream = TerminalStream()
    bar = ProgressBar(stream, 1, label="Folders", unit="folders")
    bar.update(1)
    bar.finish()
    finished = stream.getvalue()

    bar.clear()

    assert stream.getvalue() == finished
