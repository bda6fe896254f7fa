"""The outbox: messages waiting for the broker's PUBACK, oldest first.

Every message gets the next per-device sequence number when it is queued; it leaves the outbox
only after the broker acknowledged it, so delivery is at-least-once and the gateway drops the
duplicates by ``(device, seq)``.

This version keeps the queue in RAM and the sequence counter in a small file, so a reboot never
reuses a sequence number; the flash-backed log that also survives power cuts is the next step
(issue 5).
"""

from tracker.compat import const

_DEFAULT_CAPACITY = const(2000)


class Outbox:
    """A bounded FIFO of ``(seq, kind, payload)``.

    :param storage: object with ``read(name) -> str | None`` and ``write(name, text)`` (atomic),
        or None to keep the sequence counter in RAM only
    :param capacity: most messages kept; when full, the oldest *location* is dropped first and
        transitions are never dropped (they carry the dwell)
    """

    def __init__(self, storage=None, capacity=_DEFAULT_CAPACITY):
        self._storage = storage
        self.capacity = capacity
        self._items = []
        self.dropped = 0
        self.last_seq = 0
        if storage is not None:
            text = storage.read("seq")
            if text:
                try:
                    self.last_seq = int(text)
                except ValueError:
                    pass
        # Reserve sequence numbers in blocks so a crash skips some numbers rather than reusing.
        self._reserved = self.last_seq

    def __len__(self):
        return len(self._items)

    def next_seq(self):
        """Take the next sequence number (persisted in blocks of 100 before use)."""
        self.last_seq += 1
        if self.last_seq > self._reserved:
            self._reserved = self.last_seq + 99
            if self._storage is not None:
                self._storage.write("seq", str(self._reserved))
        return self.last_seq

    def put(self, seq, kind, payload):
        """Queue a message built with sequence number ``seq``."""
        if len(self._items) >= self.capacity:
            self._make_room()
        self._items.append((seq, kind, payload))

    def _make_room(self):
        for i in range(len(self._items)):
            if self._items[i][1] != "event":
                self._items.pop(i)
                self.dropped += 1
                return
        self._items.pop(0)
        self.dropped += 1

    def peek(self):
        """The oldest message, or None."""
        return self._items[0] if self._items else None

    def pop(self, seq):
        """Remove the message ``seq`` once the broker has acknowledged it."""
        if self._items and self._items[0][0] == seq:
            self._items.pop(0)
