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

from lustrepy.client.journal import Journal
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
        self._seqs: list[tuple[int, int]] = []          # FID sequences: (seq, width)
        self._next_oid = 1
        self._fetching = False
        self._applied = 0                               # MDS applied every seq <= this
        self._uncommitted: list[tuple[int, int]] = []   # (seq, transno) applied, not yet committed
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
        if len(self.journal):
            log.info("replaying %d update records left from before", len(self.journal))
            self.flush()
        else:
            rep = self.mdc.reint_batch([])
            self.mdc.raise_for(rep)
            if rep.applied_seq + 1 != self.journal.next_seq:     # the MDS says where numbering goes on
                self.journal.start_after(rep.applied_seq)
            self._applied = rep.applied_seq
        self._fetch_seq()
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
                stem = self.journal.path[:-len(".jnl")] if self.journal.path.endswith(".jnl") else ""
                for path in (self.journal.path, self.journal.path + ".lock", stem + ".id" if stem else ""):
                    try:
                        if path:
                            os.unlink(path)
                    except OSError:
                        pass

    # ---- grants ----------------------------------------------------------------------

    def adopt(self, desc: cpb.LockDesc) -> Grant | None:
        """A WBC lock the MDS granted on a directory; None if it is not usable."""
        if not desc.cookie:
            return None
        root = Fid(desc.res.n0, desc.res.n1, desc.res.n2)
        with self._mu:
            if self._closed or root in self._dir_grant:
                return None
            g = Grant(desc.cookie, root, {root})
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

    def new_fid(self) -> Fid | None:
        """A FID from this client's sequence, without waiting; None when none is at hand."""
        with self._mu:
            while self._seqs and self._next_oid > self._seqs[0][1]:
                self._seqs.pop(0)
                self._next_oid = 1
            if not self._seqs:
                fetch = not self._fetching
                self._fetching = True
                fid = None
            else:
                seq, width = self._seqs[0]
                fid = Fid(seq, self._next_oid, 0)
                self._next_oid += 1
                fetch = (len(self._seqs) == 1 and width - self._next_oid < SEQ_LOW and not self._fetching)
                if fetch:
                    self._fetching = True
        if fetch:
            threading.Thread(target=self._fetch_seq, name="wbc-seq", daemon=True).start()
        return fid

    def _fetch_seq(self) -> None:
        try:
            seq, width = self.mdc.alloc_seq()
        except LpError as e:
            log.warning("cannot get a FID sequence: %s", e.message)
            with self._mu:
                self._fetching = False
            return
        with self._mu:
            self._seqs.append((seq, width))
            self._fetching = False

    # ---- records ---------------------------------------------------------------------

    def record(self, cred: Cred, time_ns: int, **op) -> int:
        """Journal one change (a ReintOp field and its message); returns its seq."""
        rec = mpb.UpdateRecord(op=mpb.ReintOp(**op), time_ns=time_ns, uid=cred.uid, gid=cred.gid,
                               groups=list(cred.groups))
        seq = self.journal.append(rec)
        with self._mu:
            self.stats["records"] += 1
            if not self._oldest:
                self._oldest = time.monotonic()
            if len(self.journal) - self._unsent_base() >= self.flush_count or self.journal.full:
                self._wake = True
                self._cv.notify_all()
        return seq

    def _unsent_base(self) -> int:
        """Records pending in the journal that the MDS has applied already (awaiting commit)."""
        return max(0, self._applied - self.journal.acked_seq)

    def pending(self) -> int:
        """Records not yet applied by the MDS (plus one when file bytes kept here wait too)."""
        with self._mu:
            n = max(0, len(self.journal) - self._unsent_base())
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
                while self._applied < target:
                    batch = [r for r in self.journal.pending(after=self._applied, limit=self.batch_max)
                             if r.seq <= target]
                    if not batch:
                        break
                    self._send(self._with_objects(batch))
                # files whose bytes are kept here: written to their objects, then their size records
                if self.data is None or not self.data.pending():
                    break
                layouts, self._layouts = self._layouts, {}
                if not self.data.write_back(layouts, self._applied):
                    break
            if commit and self._uncommitted:
                self._commit(self.mdc.sync())

    def _with_objects(self, batch: list[mpb.UpdateRecord]) -> list[mpb.UpdateRecord]:
        """Creates of files with bytes kept here ask for their objects (the journal keeps
        them without: after a crash, there are no bytes to write)."""
        if self.data is None:
            return batch
        out = []
        for r in batch:
            if r.op.WhichOneof("op") == "create" and self.data.wants_layout(fid_from_pb(r.op.create.fid)):
                r2 = mpb.UpdateRecord()
                r2.CopyFrom(r)
                r2.op.create.delay_layout = False
                r = r2
            out.append(r)
        return out

    def _send(self, batch: list[mpb.UpdateRecord]) -> None:
        rep = self.mdc.reint_batch(batch)
        for rl in rep.layouts:
            self._layouts[fid_from_pb(rl.fid)] = layout_from_pb(rl.layout)
        err = rep.hdr.errno
        if err and not rep.failed_seq:
            raise LpError(err, rep.hdr.message or "update records refused")
        with self._mu:
            self._applied = max(self._applied, rep.applied_seq)
            if rep.hdr.transno:
                self._uncommitted.append((rep.applied_seq, rep.hdr.transno))
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
        self._commit(rep.hdr.last_committed)

    def _commit(self, last_committed: int) -> None:
        """Drop from the journal what the MDS has on stable storage."""
        upto = 0
        with self._mu:
            while self._uncommitted and self._uncommitted[0][1] <= last_committed:
                upto = self._uncommitted.pop(0)[0]
            if not self._uncommitted and self._applied:
                upto = max(upto, min(self._applied, self.journal.next_seq - 1))
        if upto > self.journal.acked_seq:
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
                if self._uncommitted and time.monotonic() - idle_commit > self.flush_age:
                    idle_commit = time.monotonic()
                    self._commit(self.mdc.sync())
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
