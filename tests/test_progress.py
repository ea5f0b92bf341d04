"""The progress bar on a real terminal: a child python runs with stdout and stderr both on
a pseudo-terminal, and what it wrote is replayed on a tiny screen emulator (carriage
return, line feed, erase-to-end-of-line, wrapping at the terminal's width). Printed lines
must appear whole, each on its own line, with the bar on its own last line."""

import fcntl
import io
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from fastnn._progress import Progress

pty = pytest.importorskip("pty")


def run_in_terminal(code, columns=100, timeout=120):
    """Run ``python -c code`` on a fresh pseudo-terminal ``columns`` wide (stdin, stdout and
    stderr); return its exit status and every byte it wrote, decoded."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-W", "ignore", "-c", code], stdin=slave,
                            stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                proc.kill()
                pytest.fail(f"the child did not finish within {timeout} s: {b''.join(chunks)!r}")
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every process holding the terminal has closed it
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    return proc.wait(timeout=timeout), b"".join(chunks).decode()


def screen(raw, columns=100):
    """The lines a terminal ``columns`` wide shows after receiving ``raw`` (trailing blanks
    removed). Handles \\r, \\n (the terminal turns it into \\r\\n), \\x1b[K and wrapping at
    the last column; any other control sequence fails the test."""
    lines, row, col = [[]], 0, 0
    i = 0
    while i < len(raw):
        ch = raw[i]
        if raw.startswith("\x1b[K", i):
            del lines[row][col:]
            i += 3
            continue
        if ch == "\x1b" or (ch < " " and ch not in "\r\n"):
            raise AssertionError(f"unexpected control sequence {raw[i:i + 8]!r}")
        if ch == "\r":
            col = 0
        elif ch == "\n":
            row += 1
            if row == len(lines):
                lines.append([])
        else:
            if col == columns:  # wrap onto the next line
                row, col = row + 1, 0
                if row == len(lines):
                    lines.append([])
            line = lines[row]
            line.extend(" " * (col + 1 - len(line)))
            line[col] = ch
            col += 1
        i += 1
    text = ["".join(line).rstrip() for line in lines]
    while text and not text[-1]:
        text.pop()
    return text


def test_screen_emulator():
    assert screen("abc\rX\r\n123\r1\x1b[K\n\rz") == ["Xbc", "1", "z"]
    assert screen("ab\ncd") == ["ab", "  cd"]  # a bare line feed keeps the column
    assert screen("abcdef", columns=4) == ["abcd", "ef"]


BAR_SCRIPT = """
import sys
from fastnn._progress import Progress
with Progress(4, "work", min_interval=0, width=8) as bar:
    bar.update(note="first")
    {print}("Iteration 1, loss = 0.50000000")
    bar.update(note="second")
    {print}("Iteration", 2, "loss", sep="|")
    {print}("to stderr", file=sys.stderr)
    bar.update()
    bar.update()
"""


def test_print_keeps_lines_whole_and_the_bar_below():
    status, raw = run_in_terminal(BAR_SCRIPT.format(print="bar.print"))
    assert status == 0, raw
    shown = screen(raw)
    assert shown[:3] == ["Iteration 1, loss = 0.50000000", "Iteration|2|loss", "to stderr"], raw
    assert len(shown) == 4 and re.fullmatch(r"work \|########\| 4/4 \d+s", shown[3]), shown


def test_plain_print_garbles_the_bar():
    """The emulator sees the bug Progress.print fixes: print() starts inside the bar's line."""
    status, raw = run_in_terminal(BAR_SCRIPT.format(print="print"))
    assert status == 0, raw
    shown = screen(raw)
    assert "Iteration 1, loss = 0.50000000" not in shown, shown
    assert any(line.startswith("work |") and "Iteration 1" in line for line in shown), shown


def test_print_without_newline_and_a_narrow_terminal():
    """Text that does not end its line stays; the bar comes back on the next line. A bar
    wider than the terminal is cut, so it never wraps (a wrapped bar cannot be redrawn)."""
    code = """
from fastnn._progress import Progress
with Progress(3, "a long label", min_interval=0, width=20) as bar:
    bar.update(note="a note that makes the bar wider than the terminal")
    bar.print("partial", end="")
    bar.print(" line")
    bar.update(note="another long note, also cut at the terminal's width")
    bar.print("no newline", end="")
    bar.update()
"""
    status, raw = run_in_terminal(code, columns=40)
    assert status == 0, raw
    shown = screen(raw, columns=40)
    assert shown[:2] == ["partial line", "no newline"], shown
    assert len(shown) == 3 and shown[2].startswith("a long label |####################| 3/3")
    assert max(len(line) for line in shown) <= 39, shown


def test_print_is_exactly_print_when_the_bar_is_not_drawn(capsys):
    quiet = Progress(3, file=io.StringIO())  # not a terminal: never drawn
    quiet.update()
    quiet.print("a", 1, None, sep="-", end="!\n")
    target = io.StringIO()
    quiet.print("to a file", file=target, flush=True)
    assert capsys.readouterr().out == "a-1-None!\n" and target.getvalue() == "to a file\n"
    with pytest.raises(TypeError):
        quiet.print("x", sep=3)

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    bar_stream = Terminal()
    bar = Progress(3, file=bar_stream, min_interval=0)
    bar.print("before the first draw")  # enabled, nothing drawn yet: nothing to clear
    assert bar_stream.getvalue() == "" and capsys.readouterr().out == "before the first draw\n"
    bar.close()
    bar.print("after close")
    assert capsys.readouterr().out == "after close\n" and bar_stream.getvalue().endswith("\n")


# Depends on the engine printing its verbose lines with bar.print (fastnn/_engine.py):
# with a plain print() the first "Iteration 1, loss = ..." line lands inside the bar's line
# and this test fails.
def test_verbose_fit_lines_stay_whole_on_a_terminal():
    code = """
import numpy as np
from fastnn import MLPClassifier
X = np.random.default_rng(0).standard_normal((40, 3))
y = (X[:, 0] > 0).astype(int)
MLPClassifier(verbose=True, max_iter=3, hidden_layer_sizes=(4,), random_state=0).fit(X, y)
"""
    status, raw = run_in_terminal(code)
    assert status == 0, raw
    shown = screen(raw)
    for n in (1, 2, 3):
        assert any(re.fullmatch(rf"Iteration {n}, loss = \d+\.\d{{8}}", line) for line in shown), \
            f"'Iteration {n}, loss = ...' is not intact on its own line: {shown}"
    bars = [line for line in shown if line.startswith("epochs |")]
    assert bars and re.fullmatch(r"epochs \|#+\| 3/3 \d+s", shown[-1]), shown
