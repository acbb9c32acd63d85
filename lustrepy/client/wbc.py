"""The client side of the metadata write-back cache: grants, new FIDs, update
records and their flushing.

A WBC grant is an EX lock on a directory's UPDATE|PERM bits that the MDS gave
this client with a create or a mkdir. While it holds one, the client changes
that directory's subtree (the directory and the directories it creates
beneath it) locally: llite asks `local()` whether a directory is covered,
names new files with `new_fid()` from the client's own FID sequence, and
`record()`s each change in the journal before the system call returns.

Records go to the MDS in batches (one ReintBatch RPC each) from a flusher
thread, by age and by count, and at once on `flush()` (fsync, syncfs,
unmount, before a server-side update, and when a grant is revoked). A record
stays in the journal until the MDS has committed it (`last_committed`), so
records lost by an MDS crash are sent again; the MDS applies each seq once.
With several MDTs each grant is one MDT's (the directory's), its new files are
named from that MDT's sequences and its records go to that MDT: the records of
all MDTs share one journal and one numbering (client/wbcstreams.py). An MDT is
asked once per mount, before its first grant is used, how far it got.
A record the MDS refuses is logged (a warning naming the files it concerns
and the errno) and kept for those files only: the next fsync or close of
one of them reports it (`take_error(fid)`), never a call on another file.
The client then gives up its grants so that it sees the MDS's state again.

Thread-safe; blocks only in `flush()`, `revoke()` and `start()`. Never
imports pyfuse3 or trio.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from lustrepy.client import wbcstreams
from lustrepy.client.journal import Journal
from lustrepy.client.wbcstreams import Stream
from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.layout import Layout
from lustrepy.common.records import Cred
from lustrepy.rpc.convert import fid_from_pb, layout_from_pb
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb

log = logging.getLogger(__name__)

PSEUDO_COOKIES = 1 << 63        # cache "locks" of objects made under a grant: above every MDS cookie
BATCH_MAX = 1024                # records per ReintBatch RPC
FLUSH_AGE = 1.0                 # seconds a record may wait before the flusher sends it
FLUSH_COUNT = 512               # pending records that wake the flusher at once
DIR_MAX = 65536                 # entries of the largest directory whose grant is used (its names are listed)
SEQ_LOW = 4096                  # FIDs left in the sequence when the next one is fetched ahead
ERRORS_MAX = 4096               # refusals kept for files that nobody fsyncs or closes: the oldest go


@dataclass
class Grant:
    """One WBC lock and the subtree it covers."""

    cookie: int
    root: Fid
    dirs: set[Fid] = field(default_factory=set)         # the root and directories made under it
    pseudo: set[int] = field(default_factory=set)       # cache cookies of objects made under it
    revoking: bool = False
    mdt: int = 0                                        # the MDT that granted it: its records go there


class Wbc:
    def __init__(self, mdc, journal: Journal, *, flush_age: float = FLUSH_AGE,
                 flush_count: int = FLUSH_COUNT, batch_max: int = BATCH_MAX, dir_max: int = DIR_MAX) -> None:
        self.mdc = mdc
        self.journal = journal
        self.flush_age = flush_age
        self.dir_max = dir_max              # a directory with more entries is not taken over (its listing)
        self.flush_count = flush_count
        self.batch_max = batch_max
        self._mu = threading.RLock()         # also `op_lock`: a local change and a revocation exclude
        self._cv = threading.Condition(self._mu)
        self._send_mu = threading.Lock()
        self._grants: dict[int, Grant] = {}             # WBC lock cookie -> grant
        self._dir_grant: dict[Fid, Grant] = {}
        self._pseudo = itertools.count(PSEUDO_COOKIES)
        # the MDTs: which one a FID is on (a FID location view), and the Mdc of one
        self._mdt_of: Callable[[Fid], int] = getattr(mdc, "mdt_of", None) or (lambda fid: 0)
        self._at: Callable[[int], Any] = getattr(mdc, "mdc", None) or (lambda index: mdc)
        self._streams: dict[int, Stream] = {}          # per MDT
        self._seq_mdt: dict[int, int] = {}              # FID sequence -> the MDT that handed it out
        self._oldest = 0.0                              # monotonic time of the oldest unsent record
        self._wake = False
        self._errors: dict[Fid, LpError] = {}           # refused records, by the files they concern
        self._closed = False
        self._thread: threading.Thread | None = None
        self.on_refused: Callable[[], None] | None = None   # llite drops its grants' caches
        self.data: Any = None                               # WbcData: small files' bytes kept here
        self._layouts: dict[Fid, Layout] = {}              # objects the last batches created
        self.stats = {"records": 0, "flushed": 0, "batches": 0, "refused": 0, "grants": 0, "revocations": 0}

    # ---- life cycle ----------------------------------------------------------------

    def start(self) -> None:
        """Replay what the journal holds from an earlier life, get a FID sequence, start flushing."""
        left = self.journal.pending()
        with self._mu:
            for r in left:
                self._stream(r.mdt).live.append(r.seq)
        for m in sorted({0} | {r.mdt for r in left}):
            self._open(m)
        if left:
            log.info("replaying %d update records left from before", len(left))
            self.flush()
        self._fetch_seq(0)
        self._thread = threading.Thread(target=self._run, name="wbc-flush", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Unmount: everything to the MDS and committed, then stop."""
        try:
            self.flush(commit=True)
        finally:
            with self._mu:
                self._closed = True
                self._cv.notify_all()
            if self._thread is not None:
                self._thread.join(timeout=10)
            empty = len(self.journal) == 0
            self.journal.close()
            if empty:                       # nothing to replay: leave no file behind
                _remove_files(self.journal.path)

    # ---- MDTs --------------------------------------------------------------------------

    def _stream(self, mdt: int) -> Stream:
        """The MDT's stream (self._mu held)."""
        st = self._streams.get(mdt)
        if st is None:
            st = self._streams[mdt] = Stream(mdt)
        return st

    def _open(self, mdt: int) -> None:
        """Ask the MDT how far it got with this client's records (LpError when it cannot say).
        Numbering moves on past it: a new record must be new to every MDT."""
        m = self._at(mdt)
        rep = m.reint_batch([])
        m.raise_for(rep)
        last = rep.applied_seq
        with self._mu:
            st = self._stream(mdt)
            st.applied = max(st.applied, last) if st.opened else last
            st.opened = True
            if not len(self.journal) and mdt == 0 and last + 1 != self.journal.next_seq:
                self.journal.start_after(last)          # MDT0 says where numbering goes on
            elif last >= self.journal.next_seq:
                self.journal.skip_to(last + 1)

    def ready(self, desc: cpb.LockDesc) -> bool:
        """The grant's MDT was asked how far it got (asked now when not yet: blocks). False when
        it cannot say: the grant is of no use then."""
        root = Fid(desc.res.n0, desc.res.n1, desc.res.n2)
        try:
            mdt = self._mdt_of(root)
            if self._is_open(mdt):
                return True
            self._open(mdt)
        except LpError as e:
            log.warning("a write-back cache grant on %s is of no use: %s", root, e.message)
            return False
        self._fetch_seq(mdt)
        return True

    def opened(self, desc: cpb.LockDesc) -> bool:
        """`ready` would not block (the grant's MDT is known to be asked)."""
        try:
            return self._is_open(self._mdt_of(Fid(desc.res.n0, desc.res.n1, desc.res.n2)))
        except LpError:
            return False

    def _is_open(self, mdt: int) -> bool:
        with self._mu:
            st = self._streams.get(mdt)
            return st is not None and st.opened

    # ---- grants ----------------------------------------------------------------------

    def adopt(self, desc: cpb.LockDesc) -> Grant | None:
        """A WBC lock the MDS granted on a directory; None if it is not usable."""
        if not desc.cookie:
            return None
        root = Fid(desc.res.n0, desc.res.n1, desc.res.n2)
        try:
            mdt = self._mdt_of(root)
        except LpError:
            return None
        with self._mu:
            st = self._streams.get(mdt)
            if self._closed or root in self._dir_grant or st is None or not st.opened:
                return None
            g = Grant(desc.cookie, root, {root}, mdt=mdt)
            self._grants[desc.cookie] = g
            self._dir_grant[root] = g
            self.stats["grants"] += 1
        log.debug("WBC lock %#x on %s", desc.cookie, root)
        return g

    def local(self, dir_fid: Fid) -> Grant | None:
        """The grant under which this directory's entries change locally, or None."""
        with self._mu:
            g = self._dir_grant.get(dir_fid)
            return g if g is not None and not g.revoking else None

    @property
    def op_lock(self) -> threading.RLock:
        """Held around a local change: a grant is marked revoking only between two changes."""
        return self._mu

    def live(self, cookie: int) -> Grant | None:
        """The grant with this lock cookie, unless it is gone or being given back."""
        with self._mu:
            g = self._grants.get(cookie)
            return g if g is not None and not g.revoking else None

    def held(self) -> bool:
        with self._mu:
            return bool(self._grants)

    def add_dir(self, g: Grant, fid: Fid) -> None:
        with self._mu:
            g.dirs.add(fid)
            self._dir_grant[fid] = g

    def remove_dir(self, g: Grant, fid: Fid) -> None:
        with self._mu:
            g.dirs.discard(fid)
            if self._dir_grant.get(fid) is g and fid != g.root:
                del self._dir_grant[fid]

    def pseudo_cookie(self, g: Grant) -> int:
        """A cache cookie for an object made under the grant (dropped with it)."""
        c = next(self._pseudo)
        with self._mu:
            g.pseudo.add(c)
        return c

    def revoke(self, cookie: int) -> Grant | None:
        """The MDS wants the lock back: send every record, then forget the grant (the caller
        drops its caches and cancels the lock). None when the cookie is no WBC lock."""
        with self._mu:
            g = self._grants.get(cookie)
            if g is None:
                return None
            g.revoking = True
        try:
            self.flush()
        except LpError as e:
            log.warning("WBC lock on %s: flushing before giving it back failed: %s", g.root, e.message)
        with self._mu:
            self._grants.pop(cookie, None)
            for d in g.dirs:
                if self._dir_grant.get(d) is g:
                    del self._dir_grant[d]
            self.stats["revocations"] += 1
        return g

    def grants(self) -> list[Grant]:
        with self._mu:
            return list(self._grants.values())

    # ---- FIDs ---------------------------------------------------------------------------

    def new_fid(self, mdt: int = 0) -> Fid | None:
        """A FID from a sequence of the MDT's given to this client, without waiting; None when
        none is at hand."""
        with self._mu:
            st = self._stream(mdt)
            while st.fid_seqs and st.next_oid > st.fid_seqs[0][1]:
                st.fid_seqs.pop(0)
                st.next_oid = 1
            if not st.fid_seqs:
                fetch = not st.fetching
                st.fetching = True
                fid = None
            else:
                seq, width = st.fid_seqs[0]
                fid = Fid(seq, st.next_oid, 0)
                st.next_oid += 1
                fetch = (len(st.fid_seqs) == 1 and width - st.next_oid < SEQ_LOW and not st.fetching)
                if fetch:
                    st.fetching = True
        if fetch:
            threading.Thread(target=self._fetch_seq, args=(mdt,), name="wbc-seq", daemon=True).start()
        return fid

    def _fetch_seq(self, mdt: int) -> None:
        try:
            seq, width = self._at(mdt).alloc_seq()
        except LpError as e:
            log.warning("cannot get a FID sequence from MDT%04x: %s", mdt, e.message)
            with self._mu:
                self._stream(mdt).fetching = False
            return
        with self._mu:
            st = self._stream(mdt)
            st.fid_seqs.append((seq, width))
            st.fetching = False
            self._seq_mdt[seq] = mdt

    # ---- records ---------------------------------------------------------------------

    def record(self, cred: Cred, time_ns: int, *, mdt: int | None = None, **op) -> int:
        """Journal one change (a ReintOp field and its message) for the MDT of its grant (by
        default the one that handed out the sequence of a FID it names: WbcData's size records);
        returns its seq."""
        rec = mpb.UpdateRecord(op=mpb.ReintOp(**op), time_ns=time_ns, uid=cred.uid, gid=cred.gid,
                               groups=list(cred.groups))
        with self._mu:
            rec.mdt = mdt if mdt is not None else _mdt_of_record(rec, self._seq_mdt)
            seq = self.journal.append(rec)
            self._stream(rec.mdt).live.append(seq)
            self.stats["records"] += 1
            if not self._oldest:
                self._oldest = time.monotonic()
            if self._unsent() >= self.flush_count or self.journal.full:
                self._wake = True
                self._cv.notify_all()
        return seq

    def _unsent(self) -> int:
        return sum(st.unsent() for st in self._streams.values())

    def pending(self) -> int:
        """Records not yet applied by their MDTs (plus one when file bytes kept here wait too)."""
        with self._mu:
            n = self._unsent()
        return n + (1 if self.data is not None and self.data.pending() else 0)

    def note_data(self) -> None:
        """File bytes were kept here: the flusher sends them within its age bound."""
        with self._mu:
            if not self._oldest:
                self._oldest = time.monotonic()

    def take_error(self, fid: Fid) -> LpError | None:
        """The refusal of an update record that concerned this file or directory, once."""
        with self._mu:
            return self._errors.pop(fid, None)

    # ---- flushing -------------------------------------------------------------------------

    def flush(self, *, commit: bool = False) -> None:
        """Send every record journalled so far; with commit, also wait until the MDS committed them."""
        with self._send_mu:
            with self._mu:
                self._oldest = 0.0      # what is added from now on starts its own age
            for _ in range(4):
                target = self.journal.next_seq - 1     # what was journalled when asked: not a moving goal
                with self._mu:
                    todo = [st for st in self._streams.values() if st.unsent()]
                for st in todo:
                    while True:
                        after = st.applied
                        batch = [r for r in self.journal.pending(after, self.batch_max, st.mdt) if r.seq <= target]
                        if not batch:
                            break
                        self._send(st, _with_objects(batch, self.data), after)
                # files whose bytes are kept here: written to their objects, then their size records
                if self.data is None or not self.data.pending():
                    break
                layouts, self._layouts = self._layouts, {}
                if not self.data.write_back(layouts, self._applied):
                    break
            if commit:
                self._sync_all()

    def _sync_all(self) -> bool:
        """Have every MDT with records applied and not known committed commit them (Sync), and
        drop those from the journal; False when none had any."""
        with self._mu:
            waiting = [st for st in self._streams.values() if st.uncommitted]
        for st in waiting:
            self._commit(st, self._at(st.mdt).sync())
        return bool(waiting)

    def _applied(self, seq: int) -> bool:
        """The record `seq` reached its MDT."""
        with self._mu:
            return wbcstreams.applied(list(self._streams.values()), seq)

    def _send(self, st: Stream, batch: list[mpb.UpdateRecord], after: int) -> None:
        """One batch of the MDT's records, the first following its record `after`."""
        rep = self._at(st.mdt).reint_batch(batch, after_seq=after)
        for rl in rep.layouts:
            self._layouts[fid_from_pb(rl.fid)] = layout_from_pb(rl.layout)
        err = rep.hdr.errno
        if err and not rep.failed_seq:
            if err == errno.EPROTO and rep.applied_seq < after:
                with self._mu:      # the MDT lost records it had applied (not committed): send them again
                    st.applied = rep.applied_seq
            raise LpError(err, rep.hdr.message or "update records refused")
        with self._mu:
            st.applied = max(st.applied, rep.applied_seq)
            if rep.hdr.transno:
                st.uncommitted.append((rep.applied_seq, rep.hdr.transno))
            self.stats["batches"] += 1
            self.stats["flushed"] += rep.applied
        if rep.failed_seq:
            rec = next((r for r in batch if r.seq == rep.failed_seq), None)
            what = rec.op.WhichOneof("op") if rec is not None else "?"
            fids = concerns(rec) if rec is not None else []
            e = LpError(err or errno.EIO, f"update record {rep.failed_seq} ({what} of "
                                          f"{', '.join(map(str, fids)) or '?'}) refused by the MDS: "
                                          f"{rep.hdr.message}")
            log.warning("%s (errno %d)", e.message, e.errno)
            self.journal.drop(rep.failed_seq)
            with self._mu:
                self.stats["refused"] += 1
                for fid in fids:
                    self._errors.pop(fid, None)             # the newest refusal, at the end
                    self._errors[fid] = e
                while len(self._errors) > ERRORS_MAX:
                    del self._errors[next(iter(self._errors))]
            if self.on_refused is not None:
                self.on_refused()
        self._commit(st, rep.hdr.last_committed)

    def _commit(self, st: Stream, last_committed: int) -> None:
        """Drop from the journal what every MDT has on stable storage."""
        with self._mu:
            st.committed(last_committed)
            upto = wbcstreams.ack_point(list(self._streams.values()), self.journal.next_seq)
        if upto > self.journal.acked_seq:       # outside the mutex: an ack may rewrite the file
            self.journal.ack(upto)

    def _run(self) -> None:
        """The flusher: sends records when enough are waiting or the oldest is old enough."""
        idle_commit = 0.0
        while True:
            with self._mu:
                if self._closed:
                    return
                now = time.monotonic()
                due = self._wake or (self._oldest and now - self._oldest >= self.flush_age)
                if not due:
                    wait = self.flush_age if not self._oldest else max(0.01, self._oldest + self.flush_age - now)
                    self._cv.wait(wait)
                    continue
                self._wake = False
            try:
                self.flush()
                if time.monotonic() - idle_commit > self.flush_age and self._sync_all():
                    idle_commit = time.monotonic()
            except LpError as e:
                log.warning("flushing update records failed: %s; trying again", e.message)
                with self._mu:
                    self._cv.wait(min(5.0, self.flush_age * 2))

    def statistics(self) -> dict[str, int]:
        with self._mu:          # one snapshot: a batch acknowledged meanwhile counts in one of them
            out = dict(self.stats)
            out["held"] = len(self._grants)
            out["pending"] = self.pending()
        out.update({f"journal_{k}": v for k, v in self.journal.stats().items()})
        return out


def _remove_files(path: str) -> None:
    """A journal with nothing to replay goes, with its lock and identity files."""
    stem = path[:-len(".jnl")] if path.endswith(".jnl") else ""
    for p in (path, path + ".lock", stem + ".id" if stem else ""):
        try:
            if p:
                os.unlink(p)
        except OSError:
            pass


def _with_objects(batch: list[mpb.UpdateRecord], data: Any) -> list[mpb.UpdateRecord]:
    """Creates of files with bytes kept here ask for their objects (the journal keeps them
    without: after a crash, there are no bytes to write)."""
    if data is None:
        return batch
    out = []
    for r in batch:
        if r.op.WhichOneof("op") == "create" and data.wants_layout(fid_from_pb(r.op.create.fid)):
            r2 = mpb.UpdateRecord()
            r2.CopyFrom(r)
            r2.op.create.delay_layout = False
            r = r2
        out.append(r)
    return out


def _mdt_of_record(rec: mpb.UpdateRecord, seq_mdt: dict[int, int]) -> int:
    """The MDT that handed out the sequence of a FID the record names (a file made under a grant:
    records that name no such FID are given their grant's MDT by the caller)."""
    return next((seq_mdt[f.seq] for f in concerns(rec) if f.seq in seq_mdt), 0)


def concerns(rec: mpb.UpdateRecord) -> list[Fid]:
    """The files and directories an update record changes: its refusal is theirs to report."""
    kind = rec.op.WhichOneof("op")
    if kind is None:
        return []
    op = getattr(rec.op, kind)
    out = []
    for name in ("fid", "parent", "src_parent", "dst_parent"):
        if name in op.DESCRIPTOR.fields_by_name and op.HasField(name):
            fid = fid_from_pb(getattr(op, name))
            if fid not in out:
                out.append(fid)
    return out


def open_journal(directory: str, fsname: str, mountpoint: str, client_id: str | None,
                 *, max_records: int, new_id: str | None = None) -> tuple[Journal, str]:
    """The journal of this mount point, and the client identity to connect with.

    Without a given identity, one left by an earlier mount that still has records
    to replay is taken over, so the MDS applies them in its numbering; else `client_id`
    or a new one. The identity is kept beside the journal (`.id`).
    """
    os.makedirs(directory, exist_ok=True)
    stem = os.path.join(directory, f"{fsname}-{mountpoint.strip('/').replace('/', '_') or 'root'}")
    path, id_path = stem + ".jnl", stem + ".id"
    journal = Journal(path, max_records=max_records)
    try:
        old = open(id_path).read().strip() if os.path.exists(id_path) else ""
        if len(journal) and old and client_id and client_id != old:
            raise LpError(errno.EBUSY, f"{path} holds {len(journal)} update records of client {old!r}: "
                                       f"mount with client_id={old} to replay them")
        cid = client_id or (old if len(journal) and old else new_id or f"{os.uname().nodename}-{uuid.uuid4()}")
        if cid != old:
            tmp = id_path + ".tmp"
            with open(tmp, "w") as f:
                f.write(cid + "\n")
            os.replace(tmp, id_path)
    except BaseException:
        journal.close()
        raise
    return journal, cid
