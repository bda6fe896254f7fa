"""The dock link over the console's USB CDC (``drivers.dock_usb``) with a stand-in stream: what
the host has sent so far, read only when the poller says so, as a board's ``sys.stdin.buffer``.

Portable (pytest and the MicroPython unix port). The same driver over a real pseudo-terminal,
answering the gateway's ``DockClient`` from a real board file, is in
``tests/test_board_wiring.py``.
"""

import asyncio

from drivers.dock_usb import LINE_MAX, DockUsb


class Console:
    """Bytes the host has sent (``feed``) and a hang-up; ``readinto`` one byte at a time, as
    the port's stdin does, and only when ``poll`` reported data (a blocking read would be a
    test failure: it would freeze a board's event loop)."""

    def __init__(self):
        self.pending = bytearray()
        self.hung_up = False
        self.blocking_reads = 0
        self.written = []
        self.fail_writes = False

    def feed(self, data):
        self.pending += data

    def readinto(self, buf):
        if not self.pending:
            if self.hung_up:
                return 0
            self.blocking_reads += 1
            return 0
        buf[0] = self.pending[0]
        self.pending = self.pending[1:]
        return 1

    def write(self, data):
        if self.fail_writes:
            raise OSError(5)
        self.written.append(bytes(data))
        return len(data)


class Poller:
    def __init__(self, console):
        self.console = console
        self.registered = None

    def register(self, obj, mask):
        self.registered = (obj, mask)

    def poll(self, timeout):
        c = self.console
        return [(c, 1)] if c.pending or c.hung_up else []


def _run(coro):
    return asyncio.run(coro)


def _link():
    console = Console()
    return console, DockUsb(console, console, Poller(console))


def test_a_frame_arriving_in_pieces_is_one_line_and_the_loop_runs_meanwhile():
    console, link = _link()
    ticks = [0]

    async def other_task():  # the GNSS reader, say: must keep running
        while True:
            ticks[0] += 1
            await asyncio.sleep(0.005)

    async def host():
        for piece in (b"@12 PI", b"NG*29", b"0ff76f\n@13 ID*"):
            console.feed(piece)
            await asyncio.sleep(0.05)

    async def main():
        t = asyncio.create_task(other_task())
        h = asyncio.create_task(host())
        first = await link.readline()
        seen = ticks[0]
        console.feed(b"0123abcd\n")
        second = await link.readline()
        await h
        t.cancel()
        return first, second, seen

    first, second, seen = _run(main())
    assert first == b"@12 PING*290ff76f\n"
    assert second == b"@13 ID*0123abcd\n"
    assert seen >= 5  # the other task ran while the frame trickled in
    assert console.blocking_reads == 0 and link.lines == 2


def test_an_over_long_line_is_handed_on_too_long_and_the_next_frame_is_intact():
    console, link = _link()
    console.feed(b"x" * (LINE_MAX + 300) + b"\n@1 PING*abc\n")
    long_line = _run(link.readline())
    assert len(long_line) == LINE_MAX + 1 and not long_line.endswith(b"\n")  # DockLink: too_long
    assert _run(link.readline()) == b"@1 PING*abc\n"
    assert link.overlong == 1


def test_a_host_that_hung_up_gives_an_empty_line_and_a_fresh_start():
    console, link = _link()
    console.feed(b"@1 PI")
    console.hung_up = True
    assert _run(link.readline()) == b""
    console.hung_up = False
    console.feed(b"@2 ID*x\n")
    assert _run(link.readline()) == b"@2 ID*x\n"  # the half frame before the hang-up is gone


def test_writes_go_to_the_host_and_a_failed_write_is_counted():
    console, link = _link()
    link.write(b"@1 OK*00000000\n")
    console.fail_writes = True
    link.write(b"@2 OK*00000000\n")
    assert console.written == [b"@1 OK*00000000\n"] and link.write_errors == 1

