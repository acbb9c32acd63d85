"""The MDT database: format, open, one writer, per-thread readers, transnos,
reply reconstruction rows and durability.

Every change is one SQLite transaction run by Store.write() under the writer
lock on the single write connection, and gets the next transno; the reply row
that answers it (if any) is written in the same transaction. The transno is
kept by the rows the transaction writes anyway: its reply row, or (a change
without one) meta.last_transno; the MDS goes on after the greater of the two
at start, so no transno is ever handed out twice. SQLite runs in
WAL mode with synchronous=NORMAL: commits are not synced one by one; sync()
makes everything committed so far durable and advances last_committed.
Readers use one connection per thread and see the latest committed state;
peek() reads on the write connection instead when it is free at once.

A failing or full disk is DiskState's business (diskstate.py: what a failure
means, full mode and its reserve); the database file is checked at open
(dbcheck.py). Only one process serves a database: an flock on mdt.lock
(holding the pid) is taken at open. Never speaks gRPC and never applies
namespace rules itself (namespace.Tx does).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self, TypeVar

from lustrepy.common import daemon
from lustrepy.common.errors import LpError, QuietError
from lustrepy.common.fid import FIRST_SEQ, ROOT_FID
from lustrepy.common.fld import first_range, index_of_uuid, mdt_uuid
from lustrepy.common.objid import MAX_MDTS, valid_mdt
from lustrepy.common.layout import Layout
from lustrepy.mds import dbcheck, schema
from lustrepy.mds.inodes import FidRange
from lustrepy.mds.namespace import Tx
from lustrepy.mds.records import Forced
from lustrepy.mds.diskstate import DiskState, rollback
from lustrepy.mds.sqlerr import MdtFull, classify

log = logging.getLogger(__name__)

R = TypeVar("R")

DB_NAME = "mdt.db"
LOCK_NAME = "mdt.lock"
BARRIER_NAME = "mdt.db.barrier"     # the database as a replay barrier left it (replaces mdt.db at start)
FSNAME_RE = re.compile(r"^[A-Za-z0-9_]{1,8}$")
_BUSY_MS = 10_000
DEFAULT_LAYOUT = Layout()           # the root default of a new file system: 1 MiB x 1


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
    return conn


def _why(e: sqlite3.Error, dir: Path) -> str:
    """A failure to open the database, in words (a full disk named as such)."""
    if isinstance(classify(e, dir), MdtFull):
        return f"{e}: the disk is full; free some space on it"
    return str(e)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _install(tmp: Path, path: Path) -> None:
    """Put the finished file `tmp` in place as `path`, durably (file, rename, directory)."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _save_copy(conn: sqlite3.Connection, path: Path) -> None:
    """Copy the database as `conn` sees it to `path`, durably; LpError ENOSPC or EIO if it cannot."""
    tmp = path.with_name(path.name + ".new")
    try:
        dst = sqlite3.connect(tmp)
        try:
            conn.backup(dst)
        finally:
            dst.close()
        _install(tmp, path)
    except (OSError, sqlite3.Error) as e:
        tmp.unlink(missing_ok=True)
        full = isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)
        raise LpError(errno.ENOSPC if full else errno.EIO, f"cannot save the replay barrier: {e}") from None


class _DirLock:
    """flock on dir/mdt.lock, holding the pid of the process that serves the directory."""

    def __init__(self, dir: Path) -> None:
        self.fd = daemon.lock_dir(str(dir), LOCK_NAME, "MDT")

    def release(self) -> None:
        if self.fd >= 0:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)       # closing drops the flock
            self.fd = -1




def format_mdt(dir: Path, fsname: str, *, default_layout: Layout = DEFAULT_LAYOUT, index: int = 0) -> str:
    """Create dir/mdt.db: identity, counters and the root directory (on MDT1.., a local root no
    client sees: its directories hang under other MDTs' names). Returns the uuid."""
    if not valid_mdt(index):
        raise QuietError(f"invalid MDT index {index}: 0 to {MAX_MDTS - 1}")
    dir = Path(dir)
    if not FSNAME_RE.match(fsname):
        raise QuietError(f"invalid file system name {fsname!r}: 1 to 8 characters of A-Z a-z 0-9 _")
    try:
        default_layout.check()
    except LpError as e:
        raise QuietError(f"invalid default layout: {e.message}") from None
    if default_layout.has_objects:
        raise QuietError("a default layout names no objects")
    try:
        dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise QuietError(f"cannot create {dir}: {e.strerror}") from None
    lock = _DirLock(dir)
    try:
        db = dir / DB_NAME
        if db.exists():
            raise QuietError(f"{dir} is already formatted as an MDT")
        tmp = dir / (DB_NAME + ".new")
        for p in (tmp, Path(str(tmp) + "-journal")):
            p.unlink(missing_ok=True)
        uuid = mdt_uuid(fsname, index)
        now = time.time_ns()
        lo = schema.layout_to_db(default_layout)
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = DELETE")
            schema.create(conn)
            conn.execute("BEGIN")
            conn.execute("INSERT INTO meta (id, fsname, uuid, instance, schema_version, created_ns, next_seq, "
                         "mds_seq, mds_next_oid, last_transno, default_layout) "
                         "VALUES (0, ?, ?, ?, ?, ?, ?, 0, 1, 0, ?)",
                         (fsname, uuid, secrets.token_hex(8), schema.SCHEMA_VERSION, now,
                          FIRST_SEQ if index == 0 else 0, lo))
            if index == 0:
                r = first_range()
                conn.execute("INSERT INTO fld (start, end, mdt) VALUES (?, ?, 0)", (r.start, r.end))
            conn.execute("INSERT INTO inodes (seq, oid, ver, mode, nlink, uid, gid, size, blocks, atime_ns, "
                         "mtime_ns, ctime_ns, rdev, generation, default_layout) "
                         "VALUES (?, ?, ?, ?, 2, 0, 0, 4096, 8, ?, ?, ?, 0, 1, ?)",
                         (ROOT_FID.seq, ROOT_FID.oid, ROOT_FID.ver, 0o40755, now, now, now, lo))
            conn.execute("COMMIT")
        finally:
            conn.close()
        _install(tmp, db)
        log.info("formatted %s as %s", dir, uuid)
        return uuid
    except (OSError, sqlite3.Error) as e:
        raise QuietError(f"cannot format {dir}: {e}") from None
    finally:
        lock.release()


class Store:
    """An open MDT database (see the module docstring for the rules)."""

    # ---- mkfs ----------------------------------------------------------------------------

    format = staticmethod(format_mdt)       # mkfs

    # ---- open / close ----------------------------------------------------------------------

    def __init__(self, dir: Path, *, expect_fsname: str | None = None, check: str = "quick",
                 reserve: int = 0) -> None:
        """Open the MDT in `dir`; `check` is how much of the database to check first
        (dbcheck.CHECKS: quick, full or none), `reserve` the bytes of disk held back for a
        full disk (reserve.py; 0: none). A damaged or foreign database is QuietError."""
        self.dir = Path(dir)
        self.disk = DiskState(self.dir, reserve)
        self.db_path = self.dir / DB_NAME
        if not self.db_path.is_file():
            raise QuietError(f"{self.dir}: not formatted as an MDT (no {DB_NAME}; format it first)")
        self._lock = _DirLock(self.dir)
        try:
            self._undo_past_barrier()
            dbcheck.header(self.db_path)
            self.disk.at_start()
            self._open(expect_fsname, check)
        except BaseException:
            self._lock.release()
            raise

    def _undo_past_barrier(self) -> None:
        """A replay barrier was set before this start: drop every transaction after it, as a power
        cut on the MDS host would (the database goes back to the copy the barrier took)."""
        saved = self.dir / BARRIER_NAME
        if not saved.is_file():
            return
        log.warning("replay barrier: dropping every transaction after the barrier (%s)", saved)
        try:
            for suffix in ("-wal", "-shm"):
                Path(str(self.db_path) + suffix).unlink(missing_ok=True)
            os.replace(saved, self.db_path)
            _fsync_dir(self.dir)
        except OSError as e:
            raise QuietError(f"{self.dir}: cannot go back to the replay barrier: {e.strerror}") from None

    def _open(self, expect_fsname: str | None, check: str) -> None:
        w = _connect(self.db_path)
        try:
            fsname, uuid, instance, last = self._check(w, expect_fsname, check)
            schema.add_missing(w)
            if index_of_uuid(uuid) == 0:    # MDT0's own range, on an MDT formatted before the fld table
                r = first_range()
                w.execute("INSERT INTO fld (start, end, mdt) SELECT ?, ?, 0 WHERE NOT EXISTS "
                          "(SELECT 1 FROM fld WHERE mdt = 0)", (r.start, r.end))
        except sqlite3.Error as e:
            w.close()
            raise QuietError(f"{self.db_path}: cannot open the MDT database ({_why(e, self.dir)})") from None
        except BaseException:
            w.close()
            raise
        self.fsname: str = fsname
        self.uuid: str = uuid
        self.index: int = index_of_uuid(uuid) or 0      # this MDT's index in its file system
        self.instance: str = instance
        self.root = ROOT_FID
        self._w = w
        self._wlock = threading.Lock()
        self._writer: int | None = None     # the thread inside write(), to refuse nested writes
        self._synclock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._last_transno: int = last
        self._saved_transno: int = last     # meta.last_transno as committed (see _save_transno)
        self._fids = FidRange()
        # The last peek, until the next write (under _wlock): only a write changes inodes or names.
        self._peeked: Tx | None = None
        self._last_committed = 0
        self._barrier: int | None = None    # a replay barrier: nothing after this transno is durable
        self._forced: tuple[int, Forced] | None = None     # (thread, results) of a replayed update
        self._dir_synced = False
        self._closed = False
        self.disk.open()
        self.sync()
        log.info("opened MDT %s (%s), last transno %d", self.uuid, self.dir, last)

    def _check(self, w: sqlite3.Connection, expect_fsname: str | None, check: str) -> tuple[str, str, str, int]:
        """Check the database's identity and pages (before anything is written to it: a foreign
        database stays as it was), report what SQLite dropped from its WAL, then set the write
        connection up."""
        try:
            tables = {r[0] for r in w.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"meta", "inodes", "dentries"} <= tables:
                raise QuietError(f"{self.db_path}: an SQLite database but not a lustrepy MDT (no MDT tables)")
            lost = dbcheck.wal_loss(self.db_path)
            dbcheck.integrity(w, self.db_path, check)
            row = w.execute("SELECT fsname, uuid, instance, schema_version, "
                            "max(last_transno, (SELECT ifnull(max(transno), 0) FROM replies)) FROM meta").fetchone()
            if lost is not None:
                log.warning("%s", lost)
                log.warning("%s", dbcheck.keep_wal(self.db_path))
            mode = w.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise QuietError(f"{self.db_path}: cannot use WAL mode (got {mode})")
            w.execute("PRAGMA synchronous = NORMAL")
            w.execute("PRAGMA foreign_keys = ON")
            w.execute("PRAGMA journal_size_limit = 67108864")
        except sqlite3.DatabaseError as e:
            if isinstance(classify(e, self.dir), MdtFull):
                raise QuietError(f"{self.db_path}: cannot open the MDT database ({_why(e, self.dir)})") from None
            raise QuietError(f"{self.db_path}: not a usable MDT database ({e})") from None
        if row is None:
            raise QuietError(f"{self.db_path}: the MDT database has no identity row")
        fsname, uuid, instance, version, last = row
        if version != schema.SCHEMA_VERSION:
            raise QuietError(f"{self.db_path}: schema version {version}, this MDS knows {schema.SCHEMA_VERSION}")
        if expect_fsname is not None and expect_fsname != fsname:
            raise QuietError(f"{self.dir} holds file system {fsname!r}, not {expect_fsname!r}")
        return fsname, uuid, instance, last

    def close(self) -> None:
        with self._wlock:
            if self._closed:
                return
            self._closed = True
            try:                            # a clean stop leaves meta exact (else start-up copes)
                self._save_transno()
                self._fids.give_back(self._w)
            except (sqlite3.Error, LpError) as e:
                log.warning("cannot record the counters in %s: %s", self.db_path, e)
        try:
            self.sync()
        except (OSError, LpError) as e:
            log.warning("final sync of %s failed: %s", self.db_path, e)
        with self._wlock:
            with self._readers_lock:
                for c in self._readers:
                    c.close()
                self._readers.clear()
            self._w.close()
            self._lock.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transactions ---------------------------------------------------------------------

    def write(self, fn: Callable[[Tx], R], *, client_id: str = "", xid: int = 0,
              encode: Callable[[R, int], bytes] | None = None, now_ns: int = 0) -> tuple[R, int]:
        """Run fn(tx) as one transaction with the next transno, and (with client_id and
        encode) save encode(result, transno) as the reply to (client_id, xid) in the same
        transaction. The times the transaction sets are now_ns (0: the clock now; a
        replayed update passes the time its client made it). Anything fn raises rolls
        everything back and is re-raised; the transno is then not used. A full disk
        becomes MdtFull (ENOSPC): the first time, the reserve is released and fn runs again,
        refused only if it adds to the namespace (reserve.py). fn must not call write()
        itself (RuntimeError), nor wait for other threads' writes."""
        if self._writer == threading.get_ident():
            raise RuntimeError("Store.write() called inside a write transaction")
        with self._wlock:
            if self._closed:
                raise LpError(errno.ESHUTDOWN, "the MDT is closed")
            try:
                return self._write(fn, client_id, xid, encode, now_ns)
            except MdtFull:
                if self.disk.full or not self.disk.go_full(self._w):
                    raise
            return self._write(fn, client_id, xid, encode, now_ns)

    def _write(self, fn: Callable[[Tx], R], client_id: str, xid: int,
               encode: Callable[[R, int], bytes] | None, now_ns: int) -> tuple[R, int]:
        """write()'s one try (under _wlock)."""
        c = self._w
        self._writer = threading.get_ident()
        try:
            with self.disk.meaning():
                c.execute("BEGIN IMMEDIATE")
                try:
                    forced = self._forced[1] if self._forced and self._forced[0] == self._writer else None
                    tx = Tx(c, writable=True, now_ns=now_ns, fids=self._fids, forced=forced)
                    tx.full = self.disk.full
                    peeked, self._peeked = self._peeked, None
                    if peeked is not None:          # nothing changed since: e.g. a create's name is still free
                        tx.knowing(peeked)
                    r = fn(tx)
                    transno = forced.transno if forced is not None else self._last_transno + 1
                    saved = self._saved_transno
                    if client_id and encode is not None:    # the reply row keeps the transno
                        c.execute("INSERT OR REPLACE INTO replies (client_id, xid, transno, reply) VALUES (?,?,?,?)",
                                  (client_id, xid, transno, bytes(encode(r, transno))))
                    else:
                        c.execute("UPDATE meta SET last_transno = ?", (transno,))
                        saved = transno
                    c.execute("COMMIT")
                    self._fids.committed()
                except BaseException:
                    self._fids.rolled_back()
                    rollback(c, self.dir)
                    raise
        finally:
            self._writer = None
        self._last_transno = max(self._last_transno, transno)
        self._saved_transno = max(self._saved_transno, saved)
        self.disk.succeeded()
        return r, transno

    def has_room(self) -> bool:
        """False while the MDT's disk is full (full mode, diskstate.py), which may end here. Lets
        background work whose result would be lost (objects precreated on an OSS) wait
        instead of failing over and over."""
        if not self.disk.full:
            return True
        with self._wlock:
            return not self._closed and self.disk.room_again(self._w)

    def forcing(self, forced: Forced | None) -> None:
        """The calling thread's next writes replay an update: they take `forced`'s transno and
        results (None: back to normal). Recovery applies replays one at a time on one thread."""
        self._forced = (threading.get_ident(), forced) if forced is not None else None

    def read(self) -> Tx:
        """A read-only Tx on this thread's read connection (sees the latest commit)."""
        if self._closed:
            raise LpError(errno.ESHUTDOWN, "the MDT is closed")
        c = getattr(self._local, "conn", None)
        if c is None:
            c = _connect(self.db_path)
            c.execute("PRAGMA query_only = ON")
            self._local.conn = c
            with self._readers_lock:
                self._readers.append(c)
        return Tx(c, writable=False)

    def peek(self, fn: Callable[[Tx], R]) -> R:
        """fn(tx) with a read-only Tx on the write connection when no transaction holds it (its
        page cache is warm: it made the latest changes, which a read connection must read again),
        else on this thread's read connection. The next write starts from what a peek on the
        write connection read (nothing can have changed it in between). fn only reads: it may
        not call write() or wait for other threads (it may hold the writer lock)."""
        if self._wlock.acquire(blocking=False):
            try:
                if not self._closed:
                    tx = Tx(self._w, writable=False, stable=True)
                    r = fn(tx)
                    self._peeked = tx           # the next write starts from what it read
                    return r
            finally:
                self._wlock.release()
        return fn(self.read())

    def saved_reply(self, client_id: str, xid: int) -> tuple[int, bytes] | None:
        """(transno, reply) saved for a request that already committed, else None."""
        r = self.read().conn.execute("SELECT transno, reply FROM replies WHERE client_id = ? AND xid = ?",
                                     (client_id, xid)).fetchone()
        return (r[0], bytes(r[1])) if r else None

    def prune_replies(self, client_id: str, replied_xid: int) -> tuple[int, int]:
        """Forget the saved replies of `client_id` with xid <= `replied_xid` (it has them, so it
        never sends those requests again) that last_committed covers. Returns the rows
        forgotten and those kept for now because their transaction is not durable yet.
        Uses no transno: it changes nothing a client can see."""
        with self._wlock:
            if self._closed:
                return 0, 0
            c = self._w
            with self.disk.meaning():
                self._save_transno()
                n = c.execute("DELETE FROM replies WHERE client_id = ? AND xid <= ? AND transno <= ?",
                              (client_id, replied_xid, self._last_committed)).rowcount
                left = c.execute("SELECT count(*) FROM replies WHERE client_id = ? AND xid <= ?",
                                 (client_id, replied_xid)).fetchone()[0]
        return n, left

    def drop_replies(self, client_id: str) -> int:
        """Forget every saved reply of `client_id` (it will resend nothing). No transno."""
        with self._wlock:
            if self._closed:
                return 0
            with self.disk.meaning():
                self._save_transno()
                return self._w.execute("DELETE FROM replies WHERE client_id = ?", (client_id,)).rowcount

    def _save_transno(self) -> None:
        """Before reply rows go (they may hold the highest transno): meta.last_transno = the
        last transno handed out, committed first (the caller holds _wlock)."""
        if self._last_transno > self._saved_transno:
            self._w.execute("UPDATE meta SET last_transno = ?", (self._last_transno,))
            self._saved_transno = self._last_transno

    def reply_clients(self) -> list[str]:
        """The clients that have saved replies."""
        return [r[0] for r in self.read().conn.execute("SELECT DISTINCT client_id FROM replies")]

    # ---- transnos and durability -------------------------------------------------------------

    def last_transno(self) -> int:
        return self._last_transno

    def last_committed(self) -> int:
        """The highest transno known to be on stable storage."""
        return self._last_committed

    def sync(self) -> int:
        """Make every committed transaction durable; return the transno now known durable.

        In WAL mode a commit is in the -wal file; syncing that file makes it durable
        (a checkpoint syncs the WAL before copying, and the database after, so a reset
        WAL never held anything that was not already durable elsewhere)."""
        with self._synclock:
            t = self._last_transno
            if t <= self._last_committed and self._dir_synced:
                return self._last_committed
            wal = Path(str(self.db_path) + "-wal")
            fd: int | None = None
            try:
                fd = os.open(wal, os.O_RDONLY)
            except FileNotFoundError:
                with self._wlock:
                    if not self._closed:
                        with self.disk.meaning():
                            self._w.execute("PRAGMA wal_checkpoint(FULL)")
            try:
                if fd is not None:
                    os.fsync(fd)
                if not self._dir_synced:
                    _fsync_dir(self.dir)
                    self._dir_synced = True
            except OSError as e:            # last_committed stays: what the WAL held may not be on disk
                err = errno.ENOSPC if e.errno in (errno.ENOSPC, errno.EDQUOT) else errno.EIO
                raise LpError(err, f"cannot sync the MDT's log: {e.strerror}") from None
            finally:
                if fd is not None:
                    os.close(fd)
            if self._barrier is not None:
                t = min(t, self._barrier)       # past a replay barrier nothing counts as durable
            self._last_committed = max(self._last_committed, t)
            return self._last_committed

    def set_barrier(self) -> int:
        """A replay barrier (Lustre's replay_barrier): copy the database as it stands and stop
        counting anything after it as durable; the next start goes back to the copy, dropping
        every transaction since, as a power cut would. Returns the barrier's transno."""
        with self._wlock:
            if self._closed:
                raise LpError(errno.ESHUTDOWN, "the MDT is closed")
            self._save_transno()
            t = self._last_transno
            _save_copy(self._w, self.dir / BARRIER_NAME)
            self._barrier = t
        self.sync()
        log.warning("replay barrier at transno %d: nothing after it will survive a restart", t)
        return t
