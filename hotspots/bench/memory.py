"""``hotspots bench memory``: the tracker's heap budget (issue 18, docs/memory.md).

For 200 and for 2,000 hot spots of 20 vertices, the whole tracker (the unix board file, the
firmware as ``.mpy`` compiled as ``tests/test_memory_budget.py`` compiles it, a TLS connection
to Mosquitto checked against its CA, the outbox) patrols through a synthetic city and receives
a new set mid-patrol, as the test does. The bench bisects, in 4 KB steps, the smallest
MicroPython heap (``-X heapsize``) in which that patrol passes every check of the test, and
prints for each size: that minimum, the peak in use, the working set above the start-up level
and the start-up level itself (``tracker.app.HeapWatch``, from the run at the minimum), and the
bytecode the tracker loads (``.mpy`` bytes).

The baseline is measured in the same run: the firmware of another git revision (``--baseline``,
by default ``dde360a``, the firmware before the start-up cuts of docs/memory.md's last section),
exported with ``git archive`` and compiled the same way. Before the patrols, a start-up profile
of both (heap in use after each import and each constructor of the boot, collected) shows where
the start-up level goes.

Each patrol plays ~8,000 GNSS epochs at ``--speedup`` times real time (about a minute at the
default): the whole bench takes 15-25 minutes. Not part of the test run.
"""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from io import BytesIO
from pathlib import Path

import click

#: The firmware before the start-up cuts in docs/memory.md's last section.
BASELINE_REF = "dde360a"
SIZES = (200, 2000)
DEVICE = "T-0128"
#: The modules the tracker loads for a patrol (the rest are drivers it does not use here,
#: other boards, and code it loads and drops at boot or while a set is checked).
_PROFILE = """
import gc, sys
_last = [0]
def m(label):
    gc.collect()
    a = gc.mem_alloc()
    print("PROFILE %s|%d|%d" % (label, a, a - _last[0]))
    _last[0] = a
m("interpreter, this script")
import asyncio
m("import asyncio (frozen in the port)")
from boards import unix
m("import boards.unix (+ boards.storage)")
cfg = unix.parse_args(sys.argv[1:])
m("settings (tracker.config: loaded, dropped)")
cfg = dict(cfg)
for name in MODULES:
    try:
        __import__("tracker." + name)
    except ImportError:
        continue
    m("import tracker." + name)
from tracker import app
opener = unix.tls_opener(cfg["ca"])
m("TLS context, CA loaded")
serial = unix.SerialLines(cfg["gnss_device"])
storage = unix.DirStorage(cfg["state_dir"])
ports = app.Ports(serial, opener, storage)
m("serial line reader, storage, ports")
heap = app.HeapWatch()
m("run() starts: 'heap: B after start-up'")
outbox = app.Outbox(storage)
fences = app.stored_fences(storage)
m("outbox, fence set checked in flash")
policy = app.Policy()
tracker = app.Tracker(cfg["device_id"], outbox, fences, cfg["report_s"], policy=policy)
m("policy, tracker (parser, fence engine)")
"""
_CORE_ORDER = ("compat", "wire", "fence", "meter", "mqtt", "nmea", "outbox", "policy", "app")


@dataclass
class Patrol:
    """One patrol at one heap size: whether it passed every check, and why not."""

    heap_kb: int
    ok: bool
    why: str = ""
    figures: dict[str, int] = field(default_factory=dict)


@dataclass
class Budget:
    """The figures of one firmware for one number of hot spots."""

    hotspots: int
    min_heap_kb: int | None
    figures: dict[str, int]
    bytecode: int
    runs: list[Patrol]


def export_firmware(ref: str, dest: Path) -> Path:
    """The ``firmware/`` folder of git revision ``ref``, written under ``dest``."""
    from simulators.tracker_process import FIRMWARE_DIR

    root = FIRMWARE_DIR.parent
    result = subprocess.run(["git", "-C", str(root), "archive", "--format=tar", ref, "firmware"],
                            capture_output=True)
    if result.returncode != 0:
        raise click.ClickException(f"git archive {ref}: {result.stderr.decode().strip()}")
    with tarfile.open(fileobj=BytesIO(result.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "firmware"


def bytecode_bytes(mpy: Path) -> int:
    """``.mpy`` bytes of the modules the tracker has in its heap during the patrol: every core
    and board module it imports and keeps (those it drops after boot or a set check are not
    counted; drivers it does not use here neither)."""
    kept = ["tracker/__init__", "boards/__init__", "boards/unix", "boards/storage"]
    kept += [f"tracker/{m}" for m in _CORE_ORDER]
    return sum((mpy / f"{name}.mpy").stat().st_size for name in kept
               if (mpy / f"{name}.mpy").exists())


def heap_figures(log: str) -> dict[str, int]:
    """The firmware's ``heap:`` line (``tracker.app.HeapWatch``), or {}."""
    m = re.search(r"heap: (\d+) after start-up, working set (\d+) above it, peak (\d+) in use,"
                  r" (-?\d+) free at least", log)
    if not m:
        return {}
    return dict(zip(("base", "working", "peak", "free_min"), map(int, m.groups()), strict=True))


class Scenario:
    """A TLS Mosquitto, and per number of hot spots: the set in flash, the new one published
    mid-patrol, and the walk through the first set's hot spots."""

    def __init__(self, folder: Path):
        from gateway.broker import Mosquitto

        self.folder = folder
        self.broker = Mosquitto(workdir=folder / "broker", tls=True).start()
        self.account = self.broker.device(DEVICE)
        self._sets: dict[int, tuple] = {}

    def close(self) -> None:
        self.broker.cleanup()

    def sets(self, hotspots: int):
        if hotspots not in self._sets:
            from fences.compile import compile_geojson
            from fences.synthetic import city_fences
            from simulators.walk import make_walk
            from tracker.fence import FenceSet

            old = compile_geojson(city_fences(hotspots, vertices=20))
            new = compile_geojson(city_fences(hotspots, vertices=20), tolerance_m=0)
            route = self.folder / f"route-{hotspots}.geojson"
            write_route(FenceSet.from_bytes(old.data), route)
            self._sets[hotspots] = (old, new, route, make_walk)
        return self._sets[hotspots]

    def patrol(self, mpy: Path, hotspots: int, heap_kb: int, speedup: float) -> Patrol:
        """One patrol with the firmware in ``mpy`` in a ``heap_kb`` heap; passes when the test's
        checks do (``tests/test_memory_budget.py``)."""
        from fences.publish import publish
        from simulators import gps, tracker_process
        from simulators.link import wait_for

        old, new, route, make_walk = self.sets(hotspots)
        run = Path(tempfile.mkdtemp(dir=self.folder))
        state = run / "state"
        state.mkdir()
        (state / "fences.json").write_text(old.text)
        walk = make_walk(route, None, time.time() - 7200)
        terminal = gps.PseudoTerminal()
        log = run / "firmware.log"
        broker = self.broker
        firmware = tracker_process.start(
            terminal.path, broker.tls_address, DEVICE, state, log_path=log,
            user=self.account.username, password=self.account.password, exit_on_eof=True,
            precompiled=mpy, heap=f"{heap_kb}K", tls_ca=broker.ca_path)
        player = threading.Thread(target=gps.play, args=(walk, terminal),
                                  kwargs={"speedup": speedup}, daemon=True)
        try:
            if not wait_for(lambda: log.exists() and "fences" in log.read_text(), 30):
                return Patrol(heap_kb, False, "did not start: " + _tail(log))
            player.start()
            time.sleep(600 / speedup)  # well into the patrol, as the test does
            publish(new, broker.host, broker.port, "main", **broker.fences.auth())
            player.join(600)
            terminal.close()  # drained: the firmware sees the end of the stream
            firmware.wait(120)
        except subprocess.TimeoutExpired:
            pass
        finally:
            if firmware.poll() is None:
                firmware.kill()
                firmware.wait()
            terminal.hang_up()
        text = log.read_text()
        figures = heap_figures(text)
        why = _failure(text, firmware.returncode, old.version, new.version)
        return Patrol(heap_kb, not why, why, figures)


def _tail(log: Path) -> str:
    return log.read_text().strip().splitlines()[-1][:120] if log.exists() and \
        log.read_text().strip() else "no output"


def _failure(text: str, returncode: int, old: str, new: str) -> str:
    """Why a patrol's log fails the test's checks ("" when it passes)."""
    lines = text.splitlines()
    if returncode != 0:
        return f"exit status {returncode}: " + (lines[-1][:120] if lines else "")
    if not lines or f"fences {old}" not in lines[0]:
        return "the set in flash was not loaded"
    for bad in ("MemoryError", "fence set rejected", "unusable", "memory:", "mqtt:"):
        for line in lines:
            if bad in line:
                return line[:120]
    if f"fences {new} active" not in text:
        return "the new set was not applied"
    published = re.search(r"published (\d+) messages", text)
    if not published or int(published.group(1)) <= 20:
        return "too few messages published"
    cells = re.search(r"fences: (\d+) cells read from flash", text)
    if not cells or int(cells.group(1)) < 5:
        return "too few cells read"
    if not heap_figures(text):
        return "no heap line"
    return ""


def write_route(fs, path: Path, stops: int = 6) -> None:
    """A route through the ``stops`` hot spots nearest the first one (a beat, a few km), as
    ``tests/test_memory_budget.py`` walks."""
    lat, lon = fs.lat0[0], fs.lon0[0]
    near = sorted(range(len(fs)), key=lambda i: (fs.lat0[i] - lat) ** 2
                  + ((fs.lon0[i] - lon) * 0.62) ** 2)[:stops]
    coords = [[fs.lon0[i] / 1e6, fs.lat0[i] / 1e6] for i in near]
    path.write_text(json.dumps({"type": "Feature", "properties": {},
                                "geometry": {"type": "LineString", "coordinates": coords}}))


def min_heap(scenario: Scenario, mpy: Path, hotspots: int, low_kb: int, high_kb: int,
             speedup: float, echo=lambda line: None) -> Budget:
    """Bisect, in 4 KB steps, the smallest heap in ``(low_kb, high_kb]`` that passes."""
    runs: list[Patrol] = []

    def attempt(kb: int) -> Patrol:
        patrol = scenario.patrol(mpy, hotspots, kb, speedup)
        runs.append(patrol)
        echo(f"    {hotspots} hot spots in {kb} KB: "
             + ("passes" if patrol.ok else f"fails ({patrol.why})"))
        return patrol

    best = attempt(high_kb)
    if not best.ok:
        return Budget(hotspots, None, best.figures, 0, runs)
    low, high = low_kb // 4, high_kb // 4  # in 4 KB steps: low fails (assumed), high passes
    while high - low > 1:
        mid = (low + high) // 2
        patrol = attempt(4 * mid)
        if patrol.ok:
            high, best = mid, patrol
        else:
            low = mid
    return Budget(hotspots, 4 * high, best.figures, 0, runs)


def profile(mpy: Path, scenario: Scenario) -> list[tuple[str, int, int]]:
    """Heap in use after each step of the boot (label, bytes, delta), collected."""
    from simulators import tracker_process

    old = scenario.sets(200)[0]
    state = Path(tempfile.mkdtemp(dir=scenario.folder))
    (state / "fences.json").write_text(old.text)
    script = state / "profile.py"
    script.write_text(_PROFILE.replace("MODULES", repr(_CORE_ORDER)))
    broker = scenario.broker
    argv = [tracker_process.find_micropython(), "-X", "heapsize=512K", str(script),
            "--gps", "/dev/null", "--broker", broker.tls_address, "--device-id", DEVICE,
            "--state", str(state), "--tls-ca", str(broker.ca_path),
            "--user", scenario.account.username, "--password", scenario.account.password]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                            env=tracker_process.micropython_env(mpy))
    rows = []
    for line in result.stdout.splitlines():
        if line.startswith("PROFILE "):
            label, total, delta = line[8:].rsplit("|", 2)
            rows.append((label, int(total), int(delta)))
    if not rows:
        raise click.ClickException("start-up profile failed: " + result.stderr[-300:])
    return rows


def measure(baseline: str | None, low_kb: int, high_kb: int, speedup: float,
            echo=lambda line: None) -> dict:
    """Start-up profiles and minimum heaps of this firmware and of ``baseline``."""
    from simulators import tracker_process

    if tracker_process.find_micropython() is None:
        raise click.ClickException(tracker_process.MICROPYTHON_MISSING)
    out: dict = {"sizes": list(SIZES), "firmware": {}}
    with tempfile.TemporaryDirectory(prefix="hotspots-bench-memory-") as tmp:
        folder = Path(tmp)
        trees = {"this": tracker_process.FIRMWARE_DIR}
        if baseline:
            trees[f"baseline {baseline}"] = export_firmware(baseline, folder / "baseline")
        scenario = Scenario(folder)
        try:
            for name, tree in trees.items():
                mpy = tracker_process.precompile(folder / f"mpy-{len(out['firmware'])}", tree)
                echo(f"{name}: start-up profile, then bisection")
                rows = profile(mpy, scenario)
                budgets = [min_heap(scenario, mpy, n, low_kb, high_kb, speedup, echo)
                           for n in SIZES]
                code = bytecode_bytes(mpy)
                for b in budgets:
                    b.bytecode = code
                out["firmware"][name] = {"profile": rows,
                                         "budgets": [asdict(b) for b in budgets]}
        finally:
            scenario.close()
    return out


def _kb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024:.1f} KB"


@click.command()
@click.option("--baseline", default=BASELINE_REF, show_default=True,
              help="Git revision whose firmware is the baseline ('' for none).")
@click.option("--low", "low_kb", type=int, default=120, show_default=True,
              help="Heap (KB) assumed too small: the bisection's lower end.")
@click.option("--high", "high_kb", type=int, default=184, show_default=True,
              help="Largest heap (KB) tried: the bisection's upper end.")
@click.option("--speedup", type=float, default=150.0, show_default=True,
              help="GNSS replay speed, times real time (the test plays at 150).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def command(baseline: str, low_kb: int, high_kb: int, speedup: float, as_json: bool) -> None:
    """Minimum heap, peak, working set, start-up heap and bytecode of the tracker on the
    MicroPython unix port, 200 and 2,000 hot spots, TLS, a new set mid-patrol."""
    echo = (lambda line: None) if as_json else click.echo
    figures = measure(baseline or None, low_kb, high_kb, speedup, echo)
    if as_json:
        click.echo(json.dumps(figures))
        return
    names = list(figures["firmware"])
    click.echo("\nstart-up profile (heap in use, collected, after each step; 512 KB heap):")
    profiles = [dict((label, (total, delta)) for label, total, delta in
                     figures["firmware"][n]["profile"]) for n in names]
    labels = list(dict.fromkeys(lab for n in names for lab, _, _ in
                                figures["firmware"][n]["profile"]))
    click.echo(f"  {'step':<45}" + "".join(f"{n[:22]:>24}" for n in names))
    for label in labels:
        cells = []
        for p in profiles:
            total, delta = p.get(label, (None, None))
            cells.append("-" if total is None else f"{total:,} ({delta:+,})")
        click.echo(f"  {label:<45}" + "".join(f"{c:>24}" for c in cells))
    click.echo("\nfull patrol, TLS, outbox, new set mid-patrol (figures at the minimum heap):")
    click.echo(f"  {'firmware':<22} {'hot spots':>9} {'min heap':>9} {'peak':>9} "
               f"{'working':>9} {'start-up':>9} {'bytecode':>9}")
    for n in names:
        for b in figures["firmware"][n]["budgets"]:
            f = b["figures"]
            click.echo(f"  {n[:22]:<22} {b['hotspots']:>9,} "
                       f"{'-' if b['min_heap_kb'] is None else str(b['min_heap_kb']) + ' KB':>9} "
                       f"{_kb(f.get('peak')):>9} {_kb(f.get('working')):>9} "
                       f"{_kb(f.get('base')):>9} {_kb(b['bytecode']):>9}")
    if len(names) == 2:
        this, base = (figures["firmware"][n]["budgets"] for n in names)
        for a, b in zip(this, base, strict=True):
            if a["min_heap_kb"] and b["min_heap_kb"]:
                click.echo(f"  {a['hotspots']:,} hot spots: minimum heap "
                           f"{a['min_heap_kb'] - b['min_heap_kb']:+d} KB against the baseline "
                           f"({a['min_heap_kb'] / b['min_heap_kb']:.2f}x)")
