"""The write-back cache's records per MDT: which records each MDT has yet to apply or commit,
and the FID sequences it handed out for new files.

A client numbers its update records once, in its journal, for every MDT; a record goes to the
MDT its directory lives on (the record says which: `UpdateRecord.mdt`), so each MDT sees its own
records with seqs skipping the others'. Batches to an MDT are chained (mds/replay.py): each
record follows the one before it for that MDT, the first follows the last one the MDT applied.
A `Stream` keeps one MDT's side: its records still in the journal (`live`, ascending), how far
the MDT applied them (`applied`), the (seq, transno) of applied batches not yet known committed,
and the FID sequences it gave this client. The journal is acknowledged up to the oldest record
some MDT has not committed (`ack_point`).

Not thread-safe: the write-back cache (client/wbc.py) holds its mutex around every call.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field


@dataclass
class Stream:
    """One MDT's records and FID sequences, as this client knows them."""

    mdt: int
    opened: bool = False                    # the MDT told its last applied record in this life
    applied: int = 0                        # the MDT applied every one of its records <= this
    live: list[int] = field(default_factory=list)           # its journalled records, not known committed
    uncommitted: list[tuple[int, int]] = field(default_factory=list)   # (applied seq, transno)
    fid_seqs: list[tuple[int, int]] = field(default_factory=list)      # FID sequences: (seq, width)
    next_oid: int = 1
    fetching: bool = False

    def unsent(self) -> int:
        """Records journalled and not yet applied by the MDT."""
        return len(self.live) - bisect.bisect_right(self.live, self.applied)

    def holds(self, seq: int) -> bool:
        i = bisect.bisect_left(self.live, seq)
        return i < len(self.live) and self.live[i] == seq

    def committed(self, last_committed: int) -> None:
        """The MDT has every transaction <= last_committed on disk: forget what that covers."""
        upto = 0
        while self.uncommitted and self.uncommitted[0][1] <= last_committed:
            upto = self.uncommitted.pop(0)[0]
        if not self.uncommitted:
            upto = max(upto, self.applied)
        del self.live[:bisect.bisect_right(self.live, upto)]


def ack_point(streams: list[Stream], next_seq: int) -> int:
    """The journal may forget every record <= this: each MDT committed its records up to it."""
    firsts = [s.live[0] for s in streams if s.live]
    return min(firsts) - 1 if firsts else next_seq - 1


def applied(streams: list[Stream], seq: int) -> bool:
    """The record `seq` reached its MDT (or is no longer journalled)."""
    for s in streams:
        if s.holds(seq):
            return seq <= s.applied
    return True
