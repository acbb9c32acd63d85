"""Which saved replies the MDT keeps, and when the others go.

A reply row (schema.py, `replies`) exists so that a request a client sends
again, because its reply never came, is answered rather than executed twice.
A client says in every request which replies it has (`replied_xid`, Lustre's
known replied XID: the reply of every request of it with an xid at or below
that has arrived or been given up); no such request is ever sent again. So,
as Lustre releases its reply data:

- rows a client has acknowledged go once `last_committed` covers them
  (prune(), run by the MDS's sweeper about once a second);
- a client that disconnects sends nothing more: all its rows go at once;
- an evicted client, or one that has not reconnected since a restart, may
  still resend what it had in flight: its acknowledged rows go at once and
  the others when it has stayed away for the recovery window.

What is left is, per connected client, the replies of its requests in flight
(and of its last ones until its next request says it has them): the table is
bounded by the clients, never by the work done. Holds only marks (xids) per
known client, under one mutex; never holds the store's writer lock while
taking it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from lustrepy.common.errors import LpError
from lustrepy.mds.store import Store

log = logging.getLogger(__name__)


class ReplyKeeper:
    def __init__(self, store: Store, *, grace: float, connected: Callable[[], Iterable[str]]) -> None:
        self.store = store
        self.grace = grace                  # how long an absent client's unacknowledged rows stay
        self._connected = connected         # the client ids the lock server has an export for
        self._mu = threading.Lock()
        self._replied: dict[str, int] = {}  # client -> the highest replied_xid it sent
        self._pruned: dict[str, int] = {}   # client -> the mark its rows were last pruned up to
        self._absent: dict[str, float] = {}  # client -> since when (monotonic) it is away with rows left
        self.pruned_rows = 0

    def start(self) -> None:
        """After a restart every client with rows is away until it reconnects."""
        now = time.monotonic()
        with self._mu:
            for cid in self.store.reply_clients():
                self._absent.setdefault(cid, now)

    def replied(self, client_id: str, xid: int) -> None:
        """A request of a connected client said it has the replies up to `xid` (the hot path:
        only a mark is kept)."""
        if xid and self._replied.get(client_id, 0) < xid:
            with self._mu:
                if self._replied.get(client_id, 0) < xid:
                    self._replied[client_id] = xid

    def left(self, client_id: str) -> None:
        """A clean disconnect: it will send nothing again. If the rows cannot go now (a full
        disk: LpError), they go at a later prune."""
        with self._mu:
            self._forget(client_id)
        try:
            self._count(self.store.drop_replies(client_id))
        except LpError:
            with self._mu:
                self._absent[client_id] = time.monotonic() - self.grace
            raise

    def evicted(self, client_id: str) -> None:
        """Evicted: what it acknowledged goes now, the rest when it stays away for the grace."""
        with self._mu:
            mark = self._replied.get(client_id, 0)
            self._absent.setdefault(client_id, time.monotonic())
        if mark:
            self._count(self.store.prune_replies(client_id, mark)[0])

    def prune(self) -> int:
        """Drop the rows clients acknowledged (and last_committed covers), and the rows of
        clients away for longer than the grace. Returns the number of rows dropped."""
        now = time.monotonic()
        with self._mu:
            due = [(c, m) for c, m in self._replied.items() if m > self._pruned.get(c, 0)]
            away = [c for c, t in self._absent.items() if now - t > self.grace]
        n = 0
        for cid, mark in due:
            gone, uncommitted = self.store.prune_replies(cid, mark)
            n += gone
            if not uncommitted:             # else the next prune, after a sync, comes back for them
                with self._mu:
                    if cid in self._replied:
                        self._pruned[cid] = max(self._pruned.get(cid, 0), mark)
        if away:
            here = set(self._connected())
            for cid in away:
                if cid in here:
                    with self._mu:
                        self._absent.pop(cid, None)
                else:
                    with self._mu:
                        self._forget(cid)
                    n += self.store.drop_replies(cid)
        self._count(n)
        return n

    def statistics(self) -> dict[str, int]:
        with self._mu:
            return {"reply_clients": len(self._replied), "reply_absent": len(self._absent),
                    "replies_pruned": self.pruned_rows}

    # ---- inside ---------------------------------------------------------------------------

    def _forget(self, cid: str) -> None:
        self._replied.pop(cid, None)
        self._pruned.pop(cid, None)
        self._absent.pop(cid, None)

    def _count(self, n: int) -> None:
        if n > 0:
            with self._mu:
                self.pruned_rows += n
            log.debug("forgot %d saved replies", n)
