"""A text progress bar for management commands.

On a terminal the bar is redrawn in place with a carriage return. Anywhere else (a log file, a
pipe, cron mail) it prints one line each time another tenth of the work is done, so logs stay
short and readable.
"""

from django.core.management.base import OutputWrapper

BAR_WIDTH = 30
LOG_STEP_PERCENT = 10


class ProgressBar:
    """Progress over a known number of items, written to `stream`.

    `stream` is a text stream or a command's `self.stdout`. `is_terminal` overrides the check
    of `stream.isatty()`, which decides between redrawing and printing lines.
    """

    def __init__(self, stream, total, *, label="Progress", unit="items", is_terminal=None):
        if total < 0:
            raise ValueError(f"total must be 0 or more, not {total}")
        self.stream = stream
        self.total = total
        self.label = label
        self.unit = unit
        if is_terminal is None:
            is_terminal = hasattr(stream, "isatty") and stream.isatty()
        self.is_terminal = is_terminal
        self.done = 0
        self._last_drawn = None
        self._last_logged_step = -1
        self._finished = False

    def update(self, done):
        """Set the number of items done and redraw or log as needed."""
        self.done = max(0, min(done, self.total))
        if self.is_terminal:
            self._redraw()
        else:
            self._log_if_next_step()

    def advance(self, count=1):
        self.update(self.done + count)

    def clear(self):
        """Erase the bar on a terminal so other output starts on a clean line.

        The next `update` draws the bar again. Outside a terminal there is nothing to erase.
        """
        if self.is_terminal and self._last_drawn is not None:
            self._write("\r" + " " * len(self._last_drawn) + "\r")
            self._last_drawn = None

    def finish(self):
        """Show the final state and end the line. Calling it again does nothing."""
        if self._finished:
            return
        self._finished = True
        if self.is_terminal:
            self._redraw()
            self._write("\n")
            # The bar's line is finished, so clear() has nothing left to erase.
            self._last_drawn = None
        elif self._last_logged_step < 100 // LOG_STEP_PERCENT:
            self._write(self._status_line() + "\n")

    def percent(self):
        if self.total == 0:
            return 100
        return self.done * 100 // self.total

    def _status_line(self):
        return f"{self.label}: {self.done}/{self.total} {self.unit} ({self.percent()}%)"

    def _redraw(self):
        filled = BAR_WIDTH if self.total == 0 else self.done * BAR_WIDTH // self.total
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        text = f"{self.label} [{bar}] {self.done}/{self.total} {self.unit} {self.percent():3d}%"
        if text == self._last_drawn:
            return
        # Pad with spaces when the new text is shorter, so no characters of the old one remain.
        padding = " " * max(0, len(self._last_drawn or "") - len(text))
        self._write("\r" + text + padding)
        self._last_drawn = text

    def _log_if_next_step(self):
        step = self.percent() // LOG_STEP_PERCENT
        if step > self._last_logged_step:
            self._last_logged_step = step
            self._write(self._status_line() + "\n")

    def _write(self, text):
        if isinstance(self.stream, OutputWrapper):
            # OutputWrapper appends a newline unless `ending` is given, but the bar must write a
            # bare "\r" to redraw its line.
            self.stream.write(text, ending="")
        else:
            self.stream.write(text)
        if hasattr(self.stream, "flush"):
            self.stream.flush()
