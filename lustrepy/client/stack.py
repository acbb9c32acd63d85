"""A client's parts wired together: mdc, data path, write-back cache, llite.

The mount program builds one and serves its llite through FUSE; tests build
one to drive the POSIX layer directly, without a kernel. `build` connects to
the MDS, replays the update records an earlier mount left in the journal,
and routes lock callbacks and data-path events to llite; `close` takes it
apart again in the order unmount needs (records sent, closes sent, channels
closed). Nothing here knows FUSE: the kernel's cache is a `KernelCache`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lustrepy.client.mirrormds import MirrorMdsOps
from lustrepy.client.journal import Journal
from lustrepy.client.llbase import KernelCache
from lustrepy.client.llite import Llite
from lustrepy.client.datapath import DataPath
from lustrepy.client.oscreplay import DEFAULT_LIMIT as DEFAULT_UNSTABLE
from lustrepy.client.lmv import Lmv
from lustrepy.client.mdc import Mdc
from lustrepy.client.wbc import DIR_MAX, Wbc
from lustrepy.common.errors import LpError

log = logging.getLogger(__name__)

MDS_LRU = 65536         # unused MDS locks kept; past this the least recently used go back


@dataclass
class ClientStack:
    mdc: Lmv
    data: DataPath
    wbc: Wbc | None
    ll: Llite

    def close(self, timeout: float) -> int:
        """Send what is left (update records, closes) and close the channels; 1 when update
        records stay unsent (they are kept in the journal for the next mount), else 0."""
        code = 0
        if self.wbc is not None:
            try:
                self.wbc.close()
            except LpError as e:
                log.error("update records left unsent at unmount (kept in %s): %s",
                          self.wbc.journal.path, e.message)
                code = 1
        self.ll.closer.stop(timeout)        # waits within the timeout; logs the closes it could not send
        self.data.close()
        self.mdc.close()
        return code


def build(address: str, fsname: str, client_id: str, kernel: KernelCache, *, timeout: float,
          journal: Journal | None = None, wbc_age: float = 1.0, wbc_dir_max: int = DIR_MAX,
          max_unstable: int = DEFAULT_UNSTABLE) -> ClientStack:
    """A connected client (with the write-back cache when a journal is given). Raises
    LpError, with everything it opened closed, when the MDS cannot be reached or the
    journal's records cannot be replayed."""
    box: list[Llite] = []

    def connected(at: str) -> Mdc:
        """A metadata client of the MDT at `at`, connected, its events routed to llite."""
        m = Mdc(at, fsname, client_id=client_id, timeout=timeout, resend_for=timeout,
                on_blocking=lambda d: box[0].on_blocking(d) if box else None, lru_size=MDS_LRU)
        try:
            m.connect()
        except LpError:
            m.channel.close()
            raise
        m.on_reconnect = lambda: box[0].on_evicted() if box else None
        m.on_reconnected = lambda: box[0].on_reconnected() if box else None
        return m

    mdc = Lmv(connected(address), connected)
    try:
        mdc.refresh()
    except LpError as e:        # an MDS that keeps no FID location view serves one MDT
        log.info("no FID location view from %s (%s): one MDT", address, e.message)

    def ost_addresses() -> dict[int, str]:
        return {o.index: o.address for o in mdc.statfs().osts}

    data = DataPath(fsname, client_id, ost_addresses, rpc_timeout=timeout, max_unstable=max_unstable,
                    on_invalidate=lambda fid: box[0].on_data_invalidate(fid) if box else None,
                    on_store=lambda fid, off, data: box[0].on_data_store(fid, off, data) if box else None)
    wbc = None
    if journal is not None:
        wbc = Wbc(mdc, journal, flush_age=wbc_age, dir_max=wbc_dir_max)
        try:
            wbc.start()             # records left by an earlier mount reach the MDS before new work
        except LpError as e:
            journal.close()
            data.close()
            mdc.close()
            raise LpError(e.errno, f"replaying update records: {e.message}") from None
    ll = Llite(mdc, data, kernel, wbc)
    data.mds = MirrorMdsOps(mdc, ll.table, ll.layout_for_data)
    box.append(ll)
    return ClientStack(mdc, data, wbc, ll)
