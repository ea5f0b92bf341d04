"""A one-line progress bar on stderr, silent when stderr is not a terminal.

No dependency: the bar is redrawn in place with a carriage return, at most every
``min_interval`` seconds, and ends with a newline when closed. When the stream is not a
terminal (a pipe, a file, a test's captured output) nothing at all is written, so logs
and captured output stay clean.
"""

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
        self._last_len = 0
        self._closed = False

    def update(self, n=1, note=""):
        """Count ``n`` more steps done and redraw (throttled); ``note`` is shown after the count."""
        self.done += n
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last_draw >= self.min_interval or self.done >= self.total > 0:
            self._draw(now, note)

    def _draw(self, now, note):
        self._last_draw = now
        elapsed = now - self._start
        if self.total > 0:
            filled = min(self.width, self.width * self.done // self.total)
            bar = f"|{'#' * filled}{'-' * (self.width - filled)}| {self.done}/{self.total}"
        else:
            bar = f"{self.done}"
        line = " ".join(s for s in (self.label, bar, f"{elapsed:.0f}s", note) if s)
        pad = max(0, self._last_len - len(line))
        self.file.write("\r" + line + " " * pad)
        self.file.flush()
        self._last_len = len(line)

    def write(self, text):
        """Write ``text`` to the stream, clearing the bar's line first; the bar comes back
        at the next update."""
        if self.enabled and self._last_len:
            self.file.write("\r" + " " * self._last_len + "\r")
            self._last_len = 0
            self._last_draw = -float("inf")
        self.file.write(text)
        self.file.flush()

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
