"""A single-producer ring buffer of top-of-book records in shared memory, for consumers on one node.

Layout: a 64-byte header (write sequence as u64 at offset 0, slot count at 8) and fixed 64-byte slots
(one cache line each): sequence u64, symbol 16 bytes, update id u64, bid ticks i64, bid steps i64,
ask ticks i64, ask steps i64. A slot's sequence is written last, so a reader that sees the sequence it expects has a
complete record; a reader that fell more than `slots` behind is told how many records it lost.
"""

from __future__ import annotations

import struct
from multiprocessing import shared_memory

HEADER = struct.Struct("<QQ")
SLOT = struct.Struct("<Q16sqqqqq")  # seq, symbol, update_id, bid, bid_qty, ask, ask_qty  (= 64 bytes)
SLOT_SIZE = 64
HEADER_SIZE = 64
assert SLOT.size == SLOT_SIZE


class TopOfBookRing:
    def __init__(self, shm: shared_memory.SharedMemory, slots: int, owner: bool) -> None:
        self._shm = shm
        self.slots = slots
        self._owner = owner
        self._buf = shm.buf
        self._seq = 0

    @classmethod
    def create(cls, name: str, slots: int = 8192) -> TopOfBookRing:
        shm = shared_memory.SharedMemory(name=name, create=True, size=HEADER_SIZE + slots * SLOT_SIZE)
        HEADER.pack_into(shm.buf, 0, 0, slots)
        return cls(shm, slots, owner=True)

    @classmethod
    def attach(cls, name: str) -> TopOfBookRing:
        shm = shared_memory.SharedMemory(name=name, create=False)
        _, slots = HEADER.unpack_from(shm.buf, 0)
        return cls(shm, slots, owner=False)

    def write(self, symbol: str, update_id: int, bid: int, bid_qty: int, ask: int, ask_qty: int) -> int:
        self._seq += 1
        offset = HEADER_SIZE + ((self._seq - 1) % self.slots) * SLOT_SIZE
        # Body first with a zero sequence, then the sequence: a reader never sees a torn record as valid.
        SLOT.pack_into(self._buf, offset, 0, symbol.encode()[:16], update_id, bid, bid_qty, ask, ask_qty)
        struct.pack_into("<Q", self._buf, offset, self._seq)
        struct.pack_into("<Q", self._buf, 0, self._seq)
        return self._seq

    def head(self) -> int:
        return struct.unpack_from("<Q", self._buf, 0)[0]

    def read_from(self, next_seq: int) -> tuple[list[tuple[int, str, int, int, int, int, int]], int, int]:
        """Records from `next_seq` on: (records, the next sequence to ask for, records lost)."""
        head = self.head()
        lost = 0
        if head - next_seq + 1 > self.slots:
            lost = head - self.slots + 1 - next_seq
            next_seq = head - self.slots + 1
        out = []
        while next_seq <= head:
            offset = HEADER_SIZE + ((next_seq - 1) % self.slots) * SLOT_SIZE
            seq, symbol, update_id, bid, bid_qty, ask, ask_qty = SLOT.unpack_from(self._buf, offset)
            if seq != next_seq:  # overwritten (or being written) under us
                lost += 1
            else:
                out.append((seq, symbol.rstrip(b"\0").decode(), update_id, bid, bid_qty, ask, ask_qty))
            next_seq += 1
        return out, next_seq, lost

    def close(self, unlink: bool = False) -> None:
        self._buf = None
        self._shm.close()
        if unlink and self._owner:
            self._shm.unlink()
