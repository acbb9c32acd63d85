"""The write-back-cache journal: update records kept on the client's disk until the MDS has them.

While a client holds a WBC lock it changes metadata locally and appends each
change as an `UpdateRecord` here before the system call returns; the records
go to the MDS later in batches and the MDS acknowledges them up to a sequence
number. One journal file per client identity; after a killed client the next
mount of that identity reopens it and replays the records still pending.

Appends are one `os.write` on an O_APPEND descriptor and are not synced: the
page cache survives a killed process, and `sync()` makes everything durable
(fsync, syncfs, unmount). After a power loss the unsynced tail may be torn;
opening cuts it at the last good entry.

File format (integers little-endian):

    header   magic b"LPWBCJNL", u32 version (1), u32 flags (0), u64 base_seq,
             u64 next_seq, u32 crc32c of the preceding 32 bytes, u32 zero  (40 bytes)
    entry    u32 body length, u32 crc32c of the body, body = u8 kind + payload
             kind 1 RECORD  payload: a serialized UpdateRecord (seq > base_seq, ascending)
             kind 2 ACK     payload: u64 seq; every record with seq <= it is acknowledged
             kind 3 DROP    payload: u64 seq; that one record is forgotten (the MDS refused it)

Every seq <= base_seq is acknowledged; numbering resumes at the largest of the
header's next_seq, the last record's seq + 1 and the last ack + 1, so it never
goes back across compactions and reopenings. The header is only ever written
by compaction (temporary file, fsync, rename, directory fsync), so it is
never torn; a bad header is an error, not a tail to cut. A sibling
`<path>.lock` file holds an exclusive flock while the journal is open, so
two processes never share one journal.
"""

from __future__ import annotations

import bisect
import errno
import fcntl
import itertools
import logging
import os
import struct
import threading
from dataclasses import dataclass
from types import TracebackType

import crc32c

from lustrepy.common.errors import LpError
from lustrepy.rpc.v1 import mds_pb2

log = logging.getLogger(__name__)

MAGIC = b"LPWBCJNL"
VERSION = 1
KIND_RECORD, KIND_ACK, KIND_DROP = 1, 2, 3
MAX_ENTRY = 16 << 20                    # a body longer than this is corruption, not a record

_HEADER = struct.Struct("<8sIIQQ")      # magic, version, flags, base_seq, next_seq
_HEADER_CRC = struct.Struct("<II")      # crc32c of the above, zero
HEADER_SIZE = _HEADER.size + _HEADER_CRC.size
_ENTRY = struct.Struct("<IIB")          # body length, crc32c(body), kind (first body byte)
_ENTRY_HEAD = struct.Struct("<II")
_SEQ = struct.Struct("<Q")
_KIND_CRC = {k: crc32c.crc32c(bytes([k])) for k in (KIND_RECORD, KIND_ACK, KIND_DROP)}


@dataclass(frozen=True, slots=True)
class _Pending:
    """A record not yet acknowledged, with its entry bytes as they are in the file."""

    record: mds_pb2.UpdateRecord
    entry: bytes


def _entry(kind: int, payload: bytes) -> bytes:
    """One length-prefixed, checksummed journal entry."""
    return _ENTRY.pack(len(payload) + 1, crc32c.crc32c(payload, _KIND_CRC[kind]), kind) + payload


def _header(base_seq: int, next_seq: int) -> bytes:
    """The file header for a journal whose seqs <= base_seq are acknowledged."""
    head = _HEADER.pack(MAGIC, VERSION, 0, base_seq, next_seq)
    return head + _HEADER_CRC.pack(crc32c.crc32c(head), 0)


def _read_header(path: str, data: bytes) -> tuple[int, int]:
    """(base_seq, next_seq) of a journal's header; a bad header is an error (never torn)."""
    if len(data) < HEADER_SIZE or data[:len(MAGIC)] != MAGIC:
        raise LpError(errno.EINVAL, f"journal {path}: not a lustrepy WBC journal (bad magic)")
    _magic, version, _flags, base_seq, next_seq = _HEADER.unpack_from(data, 0)
    if version != VERSION:
        raise LpError(errno.EINVAL, f"journal {path}: format version {version}, expected {VERSION}")
    crc, _ = _HEADER_CRC.unpack_from(data, _HEADER.size)
    if crc != crc32c.crc32c(data[:_HEADER.size]):
        raise LpError(errno.EIO, f"journal {path}: header checksum mismatch")
    if next_seq <= base_seq:
        raise LpError(errno.EINVAL, f"journal {path}: header next_seq {next_seq} <= base_seq {base_seq}")
    return base_seq, next_seq


class Journal:
    """The on-disk journal of one client identity's unacknowledged WBC update records.

    `max_records` and `max_bytes` bound the unacknowledged records: `full` says
    when they are reached, and the caller then flushes to the MDS before
    appending more (append itself never refuses). `compact_bytes` is the file
    size above which a mostly acknowledged file is rewritten. Thread-safe.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_records: int = 4096,
                 max_bytes: int = 8 << 20, compact_bytes: int = 1 << 20) -> None:
        self.path = os.fspath(path)
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.compact_bytes = compact_bytes
        self._lock = threading.Lock()
        self._seqs: list[int] = []                  # pending seqs, ascending
        self._pending: dict[int, _Pending] = {}
        self._pending_bytes = 0
        self._next_seq = 1
        self._appended = 0
        self._compactions = 0
        self._size = 0                              # bytes of good entries in the file
        self._fd = -1
        self._lock_fd = -1
        self._broken: LpError | None = None
        try:
            self._open()
        except BaseException:
            self._close_fds()
            raise

    # ---- opening ---------------------------------------------------------------

    def _open(self) -> None:
        """Take the identity's lock, scan the file and restore the pending records."""
        parent = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(parent, exist_ok=True)
            self._lock_fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise self._error(e, "cannot open") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise LpError(errno.EBUSY, f"journal {self.path}: in use by another process") from None
        try:
            try:
                os.unlink(self.path + ".tmp")                 # left by a compaction that crashed
            except FileNotFoundError:
                pass
            try:
                with open(self.path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                data = b""
        except OSError as e:
            raise self._error(e, "cannot read") from None
        if not data:                                        # new (or never written): start empty
            self._rewrite()
            self._compactions = 0
            return
        good = self._scan(data)
        if good < len(data):
            log.warning("journal %s: cut a torn or corrupt tail of %d bytes at offset %d (last seq %d)",
                        self.path, len(data) - good, good, self._next_seq - 1)
            self._rewrite()
            return
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except OSError as e:
            raise self._error(e, "cannot open") from None
        self._size = len(data)
        if self._should_compact():
            self._rewrite()

    def _scan(self, data: bytes) -> int:
        """Restore state from the file contents; return the length of its good prefix."""
        base_seq, next_seq = _read_header(self.path, data)
        self._next_seq = next_seq
        last = base_seq                 # largest seq seen in the file (records or acks)
        acked = base_seq
        off = HEADER_SIZE
        view = memoryview(data)
        while off < len(data):
            if len(data) - off < _ENTRY.size:
                break
            length, crc = _ENTRY_HEAD.unpack_from(data, off)
            body = off + _ENTRY_HEAD.size
            if length == 0 or length > MAX_ENTRY or body + length > len(data):
                break
            if crc32c.crc32c(view[body:body + length]) != crc:
                break
            kind, payload = data[body], view[body + 1:body + length]
            where = f"journal {self.path}: entry at offset {off}"
            if kind == KIND_RECORD:
                rec = mds_pb2.UpdateRecord()
                try:
                    rec.ParseFromString(payload)  # type: ignore[arg-type]  # protobuf parses any buffer; its stubs say bytes
                except Exception:
                    raise LpError(errno.EINVAL, f"{where}: unreadable update record") from None
                if rec.seq <= last:
                    raise LpError(errno.EINVAL, f"{where}: record seq {rec.seq} after seq {last}")
                last = rec.seq
                self._seqs.append(rec.seq)
                self._pending[rec.seq] = _Pending(rec, bytes(data[off:body + length]))
                self._pending_bytes += _ENTRY_HEAD.size + length
            elif kind in (KIND_ACK, KIND_DROP):
                if len(payload) != _SEQ.size:
                    raise LpError(errno.EINVAL, f"{where}: mark of {len(payload)} bytes")
                (seq,) = _SEQ.unpack(payload)
                if kind == KIND_ACK:
                    acked = max(acked, seq)
                    self._forget_through(seq)
                else:
                    self._forget_one(seq)
            else:
                raise LpError(errno.EINVAL, f"{where}: unknown kind {kind}")
            off = body + length
        self._next_seq = max(self._next_seq, last + 1, acked + 1)
        return off

    # ---- state -----------------------------------------------------------------

    def _forget_through(self, seq: int) -> None:
        """Remove every pending record with seq <= `seq`."""
        n = bisect.bisect_right(self._seqs, seq)
        for s in self._seqs[:n]:
            self._pending_bytes -= len(self._pending.pop(s).entry)
        del self._seqs[:n]

    def _forget_one(self, seq: int) -> bool:
        """Remove the pending record `seq`, if there is one."""
        p = self._pending.pop(seq, None)
        if p is None:
            return False
        self._seqs.pop(bisect.bisect_left(self._seqs, seq))
        self._pending_bytes -= len(p.entry)
        return True

    @property
    def next_seq(self) -> int:
        """The seq the next appended record gets."""
        return self._next_seq

    @property
    def acked_seq(self) -> int:
        """Every record with seq <= this is acknowledged (or dropped)."""
        with self._lock:
            return self._acked_seq()

    def _acked_seq(self) -> int:
        """acked_seq, with the lock held."""
        return self._seqs[0] - 1 if self._seqs else self._next_seq - 1

    @property
    def full(self) -> bool:
        """True when the unacknowledged records reach max_records or max_bytes."""
        return len(self._seqs) >= self.max_records or self._pending_bytes >= self.max_bytes

    def __len__(self) -> int:
        """The number of pending records."""
        return len(self._seqs)

    # ---- operations ------------------------------------------------------------

    def append(self, record: mds_pb2.UpdateRecord) -> int:
        """Journal `record` and return its seq.

        A record with seq 0 gets the next seq (set on `record` itself); a
        nonzero seq must equal `next_seq`. The journal keeps `record`, so the
        caller must not change it afterwards. Returns once the entry is in
        the page cache (it survives a killed process; `sync()` for power loss).
        """
        with self._lock:
            self._check_open()
            if record.seq == 0:
                record.seq = self._next_seq
            elif record.seq != self._next_seq:
                raise LpError(errno.EINVAL, f"journal {self.path}: record seq {record.seq}, "
                                            f"expected {self._next_seq}")
            entry = _entry(KIND_RECORD, record.SerializeToString())
            self._write(entry)
            seq = self._next_seq
            self._next_seq = seq + 1
            self._seqs.append(seq)
            self._pending[seq] = _Pending(record, entry)
            self._pending_bytes += len(entry)
            self._appended += 1
            return seq

    def pending(self, after: int = 0, limit: int | None = None, mdt: int | None = None) -> list[mds_pb2.UpdateRecord]:
        """The unacknowledged records with seq > `after` (for `mdt` only, when given), oldest first,
        at most `limit`. They are the journal's own objects: read or copy them, never change them."""
        with self._lock:
            seqs = self._seqs
            recs = (self._pending[seqs[k]].record for k in range(bisect.bisect_right(seqs, after), len(seqs)))
            if mdt is not None:
                recs = (r for r in recs if r.mdt == mdt)
            return list(itertools.islice(recs, None if limit is None else max(limit, 0)))

    def ack(self, seq: int) -> None:
        """The MDS has every record with seq <= `seq`: forget them (idempotent, monotonic).

        Writes an ack mark, then compacts when nothing is pending any more or
        when acknowledged entries are most of a file above `compact_bytes`.
        A seq beyond the last one written means the MDS holds records this
        journal lost (a torn tail after a power loss): numbering then moves on
        past it, so no new record reuses a seq the MDS already has.
        """
        with self._lock:
            self._check_open()
            if seq <= self._acked_seq():
                return
            self._write(_entry(KIND_ACK, _SEQ.pack(seq)))
            self._forget_through(seq)
            if seq >= self._next_seq:
                log.warning("journal %s: the MDS acknowledged seq %d, beyond the last written %d",
                            self.path, seq, self._next_seq - 1)
                self._next_seq = seq + 1
            if self._should_compact():
                self._rewrite()

    def drop(self, seq: int) -> None:
        """Forget the pending record `seq` (the MDS refused it and consumed its seq).

        It counts as acknowledged; a seq that is not pending is ignored.
        """
        with self._lock:
            self._check_open()
            if seq >= self._next_seq:
                raise LpError(errno.EINVAL, f"journal {self.path}: drop of seq {seq}, "
                                            f"only {self._next_seq - 1} written")
            if seq not in self._pending:
                return
            self._write(_entry(KIND_DROP, _SEQ.pack(seq)))
            self._forget_one(seq)
            if self._should_compact():
                self._rewrite()

    def start_after(self, seq: int) -> None:
        """Number the next record `seq` + 1: the MDS's last applied seq for this identity.

        Only for a journal with nothing pending (LpError EBUSY otherwise).
        The MDS is the authority on which seqs it has, so this may also move
        numbering back (a restored or reformatted MDS); that logs a warning.
        Durable when it returns.
        """
        with self._lock:
            self._check_open()
            if self._seqs:
                raise LpError(errno.EBUSY, f"journal {self.path}: {len(self._seqs)} records pending "
                                           f"from seq {self._seqs[0]}; replay them first")
            if seq < 0:
                raise LpError(errno.EINVAL, f"journal {self.path}: start after negative seq {seq}")
            if seq + 1 == self._next_seq:
                return
            if seq + 1 < self._next_seq:
                log.warning("journal %s: numbering goes back from %d to %d as the MDS asks",
                            self.path, self._next_seq, seq + 1)
            old = self._next_seq
            self._next_seq = seq + 1
            try:
                self._rewrite()
            except BaseException:
                self._next_seq = old
                raise

    def skip_to(self, seq: int) -> None:
        """Number the next record `seq` at least (never back), records pending or not (an MDT asked
        late has records up to seq - 1). The next record writes it; none: no number was taken."""
        with self._lock:
            self._check_open()
            self._next_seq = max(self._next_seq, seq)

    def compact(self) -> None:
        """Rewrite the file with only the pending records (durable when it returns)."""
        with self._lock:
            self._check_open()
            self._rewrite()

    def sync(self) -> None:
        """Make every entry written so far durable (fsync of the journal file)."""
        with self._lock:
            self._check_open()
            try:
                os.fsync(self._fd)
            except OSError as e:
                raise self._error(e, "fsync failed") from None

    def stats(self) -> dict[str, int]:
        """Counters: pending, pending_bytes, appended, acked_seq, next_seq, file_bytes, compactions."""
        with self._lock:
            return {"pending": len(self._seqs), "pending_bytes": self._pending_bytes, "appended": self._appended,
                    "acked_seq": self._acked_seq(), "next_seq": self._next_seq, "file_bytes": self._size,
                    "compactions": self._compactions}

    def close(self) -> None:
        """Close the file and release the identity's lock (no fsync: call sync() first for that)."""
        with self._lock:
            self._close_fds()

    def __enter__(self) -> Journal:
        """The journal itself; closed when the block ends."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Close the journal."""
        self.close()

    # ---- file I/O --------------------------------------------------------------

    def _check_open(self) -> None:
        """Raise if the journal is closed or cannot be appended to safely."""
        if self._broken is not None:
            raise self._broken
        if self._fd < 0:
            raise LpError(errno.EBADF, f"journal {self.path}: closed")

    def _error(self, e: OSError, what: str) -> LpError:
        """An LpError carrying `e`'s errno, naming the file."""
        return LpError(e.errno or errno.EIO, f"journal {self.path}: {what}: {e.strerror or e}")

    def _write(self, entry: bytes) -> None:
        """Append one entry with one write; on failure cut the file back to its good length."""
        try:
            n = os.write(self._fd, entry)
        except OSError as e:
            err = self._error(e, "write failed")
            self._cut_back()
            raise err from None
        if n != len(entry):
            self._cut_back()
            raise LpError(errno.ENOSPC, f"journal {self.path}: short write ({n} of {len(entry)} bytes)")
        self._size += n

    def _cut_back(self) -> None:
        """Remove a partly written entry, so later appends never follow garbage."""
        try:
            os.ftruncate(self._fd, self._size)
        except OSError as e:
            self._broken = self._error(e, "cannot remove a partly written entry; reopen the journal")
            log.error("%s", self._broken.message)

    def _should_compact(self) -> bool:
        """Nothing pending (and entries to drop), or a big file mostly of acknowledged entries."""
        if self._size <= HEADER_SIZE:
            return False
        if not self._seqs:
            return True
        dead = self._size - HEADER_SIZE - self._pending_bytes
        return self._size > self.compact_bytes and dead * 2 > self._size

    def _rewrite(self) -> None:
        """Write header and pending records to a temporary file, fsync, rename over, fsync the directory."""
        tmp = self.path + ".tmp"
        data = b"".join([_header(self._acked_seq(), self._next_seq)] +
                        [self._pending[s].entry for s in self._seqs])
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise self._error(e, "cannot create temporary file for compaction") from None
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                if n <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[n:]
            os.fsync(fd)
            os.replace(tmp, self.path)
        except OSError as e:
            os.close(fd)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise self._error(e, "compaction failed") from None
        old, self._fd, self._size = self._fd, fd, len(data)
        if old >= 0:
            os.close(old)
        self._compactions += 1
        try:
            dfd = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as e:
            raise self._error(e, "directory fsync failed") from None

    def _close_fds(self) -> None:
        """Close the journal file and the lock file (releasing the flock)."""
        for name in ("_fd", "_lock_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                setattr(self, name, -1)
                os.close(fd)
