"""The tracker's closing summary in the log, at the end of the GNSS stream (``exit_on_eof``).

Run once, at the very end: ``tracker.app.run`` imports it only then, so its bytecode and its
long messages are not in the heap while the tracker patrols (docs/memory.md).
"""


def log(ports, tracker, heap, published, oom):
    """Log what the run did: NMEA counts, fixes, the outbox, messages published, the energy
    counters, fence windows, the heap figures (``heap``: the run's ``tracker.app.HeapWatch``)
    and, if any, what ran short of heap (``oom``: GNSS lines dropped)."""
    out = ports.log
    outbox = tracker.outbox
    out("nmea: %r" % (tracker.parser.stats(),))
    out("gnss: %d fixes used, %d epochs skipped with the receiver off"
        % (tracker.fixes, tracker.gnss_off_epochs))
    out("outbox: last seq %d, pending %d, thinned %d" % (
        outbox.last_seq, len(outbox), outbox.dropped))
    out("published %d messages" % published)
    out("energy: %r" % (tracker.energy(),))
    if tracker.engine is not None:
        out("fences: %d cells read from flash, %d hot spots in RAM"
            % (tracker.engine.windows, len(tracker.engine.fences)))
    heap.collect()
    out(heap.line())
    try:
        from micropython import qstr_info
    except ImportError:  # CPython
        pass
    else:
        # Interned names are never freed, and each pool doubles: a 6th pool costs 7.6 KB on the
        # 64-bit unix port (docs/memory.md). Printed, not logged: MicroPython prints it itself.
        qstr_info()
    if oom or tracker.memory_errors:
        out("memory: %d GNSS lines dropped, %d fixes short of heap"
            % (oom, tracker.memory_errors))
