"""``hotspots bench link``: what each way of reaching the broker costs in tracker heap.

On the MicroPython unix port, the smallest heap (``-X heapsize``) in which the firmware's MQTT
client connects, publishes at QoS 1 and disconnects, found by bisection, for:

- ``plain``: the host's TCP sockets (``asyncio.open_connection``) — the baseline;
- ``tls``: MicroPython's ``ssl`` (mbedTLS) over those sockets, checking the broker's
  certificate against the CA, as ``boards/unix.py --tls-ca`` does;
- ``modem``: the SIM7080G driver (``drivers/modem_sim7080.py``) through ``simulators/modem.py``,
  plain TCP in the modem;
- ``modem_tls``: the same with TLS in the modem (``AT+CSSLCFG``/``AT+CASSLCFG``, the CA uploaded
  with ``AT+CFSWFILE``) to the TLS listener: the handshake and its buffers live in the modem.

mbedTLS on the unix port allocates with the C library's ``malloc``, outside MicroPython's heap
(on the RP2040 it allocates from the MicroPython heap; on the ESP32 from ESP-IDF's): so the bench
also reports the peak of ``malloc``'d bytes for each link, counted by a small ``LD_PRELOAD``
shim compiled with the C compiler (the column is empty without one), at one fixed heap size.

Each figure is the heap the whole run needs (interpreter state, the unix board file and the app
it imports, as bytecode precompiled with mpy-cross as a board gets it, the client, the link), so
the differences between rows are what each link adds.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import click

_SCRIPT = """
import asyncio, gc, sys
from boards import unix  # every mode pays for the board file (and the app it imports)
from tracker.mqtt import MQTTClient
MODE = %(mode)r
async def main():
    if MODE == "plain":
        opener = asyncio.open_connection
    elif MODE == "tls":
        opener = unix.tls_opener(%(ca)r)
    else:
        ca = None
        if MODE == "modem_tls":
            with open(%(ca)r, "rb") as f:
                ca = f.read()
        from boards.unix_devices import open_modem
        opener = open_modem(%(modem)r, {"apn": "internet"}, lambda line: None,
                            ca).open_connection
    c = MQTTClient("bench", opener, user=%(user)r, password=%(password)r)
    await c.connect(%(host)r, %(port)d)
    await c.publish("bench/link", b"x" * 200, 1)
    await c.disconnect()
    gc.collect()
    print("OK", gc.mem_alloc())
asyncio.run(main())
"""


_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static size_t live, peak;
static void *(*r_malloc)(size_t), *(*r_calloc)(size_t, size_t), *(*r_realloc)(void *, size_t);
static void (*r_free)(void *);
static char boot[65536];
static size_t boot_used;
static int in_boot(void *p) { return (char *)p >= boot && (char *)p < boot + sizeof boot; }
static void init(void) {
  r_malloc = dlsym(RTLD_NEXT, "malloc"); r_calloc = dlsym(RTLD_NEXT, "calloc");
  r_realloc = dlsym(RTLD_NEXT, "realloc"); r_free = dlsym(RTLD_NEXT, "free");
}
static void add(void *p) { if (p) { live += malloc_usable_size(p); if (live > peak) peak = live; } }
static void sub(void *p) { if (p) live -= malloc_usable_size(p); }
void *malloc(size_t n) { if (!r_malloc) init(); void *p = r_malloc(n); add(p); return p; }
void *calloc(size_t a, size_t b) {
  if (!r_calloc) { void *p = boot + boot_used; boot_used += (a * b + 15) & ~15; return p; }
  void *p = r_calloc(a, b); add(p); return p;
}
void *realloc(void *q, size_t n) {
  if (!r_realloc) init();
  if (in_boot(q)) { void *p = r_malloc(n); memcpy(p, q, n); add(p); return p; }
  sub(q); void *p = r_realloc(q, n); add(p); return p;
}
void free(void *p) { if (in_boot(p)) return; if (!r_free) init(); sub(p); r_free(p); }
__attribute__((destructor)) static void report(void) {
  char *f = getenv("MCOUNT_OUT");
  if (f) { FILE *o = fopen(f, "w"); if (o) { fprintf(o, "%zu\n", peak); fclose(o); } }
}
"""


def _malloc_shim(folder: Path) -> Path | None:
    """The malloc-counting shim, compiled into ``folder``; None without a C compiler."""
    import shutil

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    (folder / "mcount.c").write_text(_SHIM)
    out = folder / "mcount.so"
    result = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(out),
                             str(folder / "mcount.c"), "-ldl"], capture_output=True)
    return out if result.returncode == 0 else None


def malloc_peak(binary: str, env: dict, code: str, shim: Path, heap_kb: int = 256) -> int | None:
    """Peak bytes the C library had allocated while ``code`` ran (MicroPython's own heap of
    ``heap_kb`` included, the same in every run)."""
    out = shim.with_suffix(".out")
    out.unlink(missing_ok=True)
    result = subprocess.run([binary, "-X", f"heapsize={heap_kb}K", "-c", code],
                            capture_output=True, text=True, timeout=30,
                            env=dict(env, LD_PRELOAD=str(shim), MCOUNT_OUT=str(out)))
    if result.returncode != 0 or not out.exists():
        return None
    return int(out.read_text())


def _runs(binary: str, env: dict, code: str, heap_kb: int) -> bool:
    try:
        result = subprocess.run([binary, "-X", f"heapsize={heap_kb}K", "-c", code],
                                capture_output=True, text=True, timeout=30, env=env)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0 and "OK" in result.stdout


def min_heap_kb(binary: str, env: dict, code: str, low: int = 4, high: int = 512) -> int | None:
    """Smallest heap (KB) in which ``code`` prints OK; None if not even ``high``."""
    if not _runs(binary, env, code, high):
        return None
    while high - low > 1:
        mid = (low + high) // 2
        if _runs(binary, env, code, mid):
            high = mid
        else:
            low = mid
    return high


def measure() -> dict[str, dict[str, int | None]]:
    """Per link: ``heap_kb`` (smallest MicroPython heap) and ``malloc_peak`` (bytes, see the
    module docstring)."""
    from gateway.broker import Mosquitto
    from simulators import tracker_process
    from simulators.modem import SimulatedModem

    binary = tracker_process.find_micropython()
    if binary is None:
        raise click.ClickException(tracker_process.MICROPYTHON_MISSING)
    figures: dict[str, dict[str, int | None]] = {}
    with tempfile.TemporaryDirectory() as tmp, \
            Mosquitto(workdir=Path(tmp) / "broker", tls=True) as broker:
        env = tracker_process.micropython_env(tracker_process.precompile(Path(tmp) / "mpy"))
        shim = _malloc_shim(Path(tmp))
        account = broker.account("bench", "admin")
        host, port = broker.address.rsplit(":", 1)
        base = {"ca": str(broker.ca_path), "user": account.username,
                "password": account.password, "host": host, "modem": ""}

        def both(code: str) -> dict[str, int | None]:
            return {"heap_kb": min_heap_kb(binary, env, code),
                    "malloc_peak": malloc_peak(binary, env, code, shim) if shim else None}

        figures["plain"] = both(_SCRIPT % dict(base, mode="plain", port=int(port)))
        figures["tls"] = both(_SCRIPT % dict(base, mode="tls", port=broker.tls_port))
        with SimulatedModem(register_delay_s=0) as modem:
            figures["modem"] = both(_SCRIPT % dict(base, mode="modem", port=int(port),
                                                   modem=modem.path))
        with SimulatedModem(register_delay_s=0) as modem:
            figures["modem_tls"] = both(_SCRIPT % dict(base, mode="modem_tls",
                                                       port=broker.tls_port, modem=modem.path))
    return figures


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def command(as_json: bool) -> None:
    """Tracker heap needed to publish over plain TCP, MicroPython TLS, and the modem."""
    figures = measure()
    if as_json:
        click.echo(json.dumps(figures))
        return
    base = figures["plain"]
    click.echo("connect, publish (QoS 1), disconnect on the MicroPython unix port:")
    click.echo(f"  {'link':<9} {'min heap':>9} {'vs plain':>9} {'C malloc peak vs plain':>24}")
    for name, f in figures.items():
        kb, peak = f["heap_kb"], f["malloc_peak"]
        vs = "-" if kb is None or base["heap_kb"] is None else f"{kb - base['heap_kb']:+d} KB"
        mpeak = "-" if peak is None or base["malloc_peak"] is None else \
            f"{peak - base['malloc_peak']:+,d} B"
        click.echo(f"  {name:<9} {'-' if kb is None else f'{kb} KB':>9} {vs:>9} {mpeak:>24}")
