"""A one-line progress bar on stderr, silent when stderr is not a terminal.

No dependency: the bar is redrawn in place with a carriage return, at most every
``min_interval`` seconds, cut to the terminal's width (a wrapped line could not be
redrawn in place), and ends with a newline when closed. When the stream is not a
terminal (a pipe, a file, a test's captured output) nothing at all is written, so logs
and captured output stay clean. Text printed while the bar is drawn goes through
``Progress.print`` (or ``Progress.write`` for the bar's own stream), which moves the bar
below it instead of writing into its line.
"""

import io
import os
import sys
import time


class Progress:
    """Progress of ``total`` steps, drawn as ``label |#####-----| 5/10 3s note``.

    Parameters
    ----------
    total : int
        Number of steps (0 or less draws a counter without a bar).
    label : str, default=""
        Text in front of the bar.
    file : file object, default=None
        Where to draw; ``None`` means ``sys.stderr`` at construction time.
    enabled : bool, default=None
        ``None`` draws only when ``file.isatty()`` is true.
    width : int, default=30
        Characters of the bar itself.
    min_interval : float, default=0.1
        Minimum seconds between redraws (the last step is always drawn).

    Examples
    --------
    Silent on a stream that is not a terminal:

    >>> import io
    >>> with Progress(3, "fits", file=io.StringIO()) as bar:
    ...     for _ in range(3):
    ...         bar.update()
    >>> bar.done, bar.enabled
    (3, False)

    Drawn when enabled explicitly:

    >>> out = io.StringIO()
    >>> with Progress(2, "fits", file=out, enabled=True, width=4, min_interval=0) as bar:
    ...     bar.update(note="delta=1")
    ...     bar.update(note="delta=2")
    >>> out.getvalue().splitlines()[-1].split("\\r")[-1].split()[:3]
    ['fits', '|####|', '2/2']
    """

    def __init__(self, total, label="", *, file=None, enabled=None, width=30,
                 min_interval=0.1):
        self.total = int(total)
        self.label = label
        self.file = sys.stderr if file is None else file
        if enabled is None:
            isatty = getattr(self.file, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.width = width
        self.min_interval = min_interval
        self.done = 0
        self._start = time.perf_counter()
        self._last_draw = -float("inf")
        self._last_len = 0  # length of the bar on screen; 0: its line is clear
        self._note = ""
        self._partial = False  # a print left the cursor inside a line
        self._closed = False

    def update(self, n=1, note=""):
        """Count ``n`` more steps done and redraw (throttled); ``note`` is shown after the count."""
        self.done += n
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last_draw >= self.min_interval or self.done >= self.total > 0:
            self._draw(now, note)

    def _columns(self):
        """The terminal's width, or 0 when unknown."""
        try:
            return os.get_terminal_size(self.file.fileno()).columns
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return 0

    def _draw(self, now, note):
        self._last_draw = now
        self._note = note
        elapsed = now - self._start
        if self.total > 0:
            filled = min(self.width, self.width * self.done // self.total)
            bar = f"|{'#' * filled}{'-' * (self.width - filled)}| {self.done}/{self.total}"
        else:
            bar = f"{self.done}"
        line = " ".join(s for s in (self.label, bar, f"{elapsed:.0f}s", note) if s)
        columns = self._columns()
        if columns > 1:
            line = line[:columns - 1]  # the last column would wrap on some terminals
        pad = max(0, self._last_len - len(line))
        if self._partial:  # keep the printed text: the bar goes on the next line
            self.file.write("\n")
            self._partial = False
        self.file.write("\r" + line + " " * pad)
        self.file.flush()
        self._last_len = len(line)

    def _clear(self):
        """Blank the bar's line and put the cursor at its start."""
        if self._last_len:
            self.file.write("\r" + " " * self._last_len + "\r")
            self.file.flush()
            self._last_len = 0

    def write(self, text):
        """Write ``text`` to the stream, clearing the bar's line first; the bar comes back
        at the next update."""
        if self.enabled and self._last_len:
            self._clear()
            self._last_draw = -float("inf")
        self.file.write(text)
        self.file.flush()

    def print(self, *args, sep=" ", end="\n", file=None, flush=False):
        """``print(*args, sep=sep, end=end, file=file, flush=flush)`` (to ``sys.stdout`` by
        default) that keeps the bar intact: while the bar is drawn, its line is cleared,
        the text printed and flushed, and the bar redrawn below it. Otherwise exactly
        ``print``.

        Use it for any line printed on the bar's terminal while the bar is active (the
        verbose "Iteration N, loss = ..." lines): a plain print would start in the middle
        of the bar and the next redraw would overwrite it. Text that does not end a line
        stays on screen; the bar comes back on the next line at the next update.
        """
        if not (self.enabled and not self._closed and (self._last_len or self._partial)):
            print(*args, sep=sep, end=end, file=file, flush=flush)
            return
        text = io.StringIO()
        print(*args, sep=sep, end=end, file=text)  # print's own formatting and checks
        text = text.getvalue()
        self._clear()
        file = sys.stdout if file is None else file
        file.write(text)
        file.flush()  # before the bar, which goes to another stream of the same terminal
        if text:
            self._partial = not text.endswith("\n")
        if not self._partial:
            self._draw(time.perf_counter(), self._note)

    def close(self):
        """Draw the final state and end the line (does nothing when disabled)."""
        if self._closed:
            return
        self._closed = True
        if self.enabled:
            self._draw(time.perf_counter(), "")
            self.file.write("\n")
            self.file.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
