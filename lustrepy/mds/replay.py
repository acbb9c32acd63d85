"""Replay of the update records a client's metadata write-back cache (WBC) sends.

A client holding a WBC lock changes its subtree locally, numbers each change
1, 2, 3 ... and later sends the records in ReintBatch requests. The MDS
executes each record exactly as a Reint request (reint.run: the same handlers,
checks and locks, taken on behalf of the client so that its own WBC lock does
not block it), in seq order, each in its own transaction, with the record's
credentials and with the record's time as the time the change sets.

Each client's last record done is kept in replay_seqs and moved in the same
transaction as the record's change, so a record runs at most once however
often a batch is resent, overlaps an earlier one or is replayed after a
restart of either side: records at or below it are skipped. A batch whose
first new record does not follow it (a gap) is refused whole. Processing
stops at the first record refused with a POSIX error: that record is
consumed (marked done on its own) and reported, so the next batch goes on
after it. Failures that are not the record's doing (eviction, shutdown, lock
timeouts) consume nothing; the batch may simply be sent again.

New files, directories and symlinks must carry FIDs from a sequence handed
out to clients; their layouts are normally delayed (asked for later with an
IT_LAYOUT intent).
"""

from __future__ import annotations

import errno
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lustrepy.common.errors import LpError
from lustrepy.common.records import Cred
from lustrepy.mds import reint
from lustrepy.mds.namespace import Tx
from lustrepy.rpc.convert import fid_from_pb, rep_err, rep_ok
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb

if TYPE_CHECKING:
    from lustrepy.mds.mdt import Mdt

log = logging.getLogger(__name__)

# Failures that say nothing about the record itself: it is not consumed and may be sent again.
NOT_THE_RECORDS = frozenset({errno.ENOTCONN, errno.ESHUTDOWN, errno.ETIMEDOUT, errno.EAGAIN, errno.ECANCELED})


class SeqConflict(LpError):
    """The client's last record done moved under a running replay; nothing of the record was kept."""

    def __init__(self, client_id: str, seq: int) -> None:
        super().__init__(errno.EPROTO, f"record {seq} of {client_id} no longer follows its last record done")


@dataclass
class _Progress:
    """How far one batch got."""

    done: int                   # the last seq done (applied, consumed, or done before)
    applied: int = 0            # records this request executed
    skipped: int = 0            # records done before
    transno: int = 0            # transno of the last record this request applied
    layouts: list[mpb.RecordLayout] = field(default_factory=list)   # creates applied with objects


def apply_batch(mdt: Mdt, req: mpb.ReintBatchRequest, client_id: str) -> mpb.ReintBatchReply:
    """Apply the records of a ReintBatch for `client_id` (see the module docstring); with no
    records, report the last seq done. POSIX results travel in the reply's header."""
    with mdt.client_mutex(client_id):
        last = mdt.store.read().replay_seq(client_id)
        records = list(req.records)
        if not records:
            return mpb.ReintBatchReply(hdr=rep_ok(), applied_seq=last)
        try:
            if req.chained:
                _check_chain(records, req.after_seq, last)
            else:
                _check_order(records, last)
        except LpError as e:
            mdt.counters["batch_gaps"] += 1
            log.warning("refused a batch of %d records from %s: %s", len(records), client_id, e.message)
            return mpb.ReintBatchReply(hdr=rep_err(e), applied_seq=last)
        return _run_records(mdt, records, client_id, req.hdr.conn_gen, _Progress(done=last))


def _check_order(records: Sequence[mpb.UpdateRecord], last: int) -> None:
    """EPROTO unless the seqs run on by one and the first new record follows `last`."""
    for prev, rec in itertools.pairwise(records):
        if rec.seq != prev.seq + 1:
            raise LpError(errno.EPROTO, f"record seqs in a batch must run on by one: {rec.seq} follows {prev.seq}")
    first = records[0].seq
    if first == 0:
        raise LpError(errno.EPROTO, "record seqs start at 1")
    if first > last + 1:
        raise LpError(errno.EPROTO, f"records {last + 1}..{first - 1} are missing: the batch starts at {first}, "
                                    f"the last record done is {last}")


def _check_chain(records: Sequence[mpb.UpdateRecord], after: int, last: int) -> None:
    """EPROTO unless the seqs ascend and the first new record's predecessor is `last`."""
    prev = after
    for rec in records:
        if rec.seq <= prev:
            raise LpError(errno.EPROTO, f"record seqs in a batch must ascend: {rec.seq} follows {prev}")
        if prev < last < rec.seq:           # the first new record must follow the last one done
            raise LpError(errno.EPROTO, f"record {rec.seq} follows {prev}, the last record done is {last}: "
                                        f"records between are missing")
        prev = rec.seq


def _run_records(mdt: Mdt, records: Sequence[mpb.UpdateRecord], client_id: str, conn_gen: int,
                 p: _Progress) -> mpb.ReintBatchReply:
    """Execute the records after p.done in order; stop at the first failure."""
    try:
        for rec in records:
            if rec.seq <= p.done:
                p.skipped += 1
                # done by an earlier request: the client may drop it once everything committed so
                # far is durable (its transno is not kept), so answer with the newest transno
                p.transno = p.transno or mdt.store.last_transno()
                continue
            try:
                mdt.lockd.check(client_id, conn_gen)        # evicted meanwhile: stop here
                p.transno, rep = _apply(mdt, rec, client_id, p.done)
                if rep.has_layout and rec.op.WhichOneof("op") == "create":
                    p.layouts.append(mpb.RecordLayout(seq=rec.seq, fid=rep.attr.fid, layout=rep.layout))
            except LpError as e:
                if e.errno in NOT_THE_RECORDS or isinstance(e, SeqConflict):
                    log.info("replay for %s stopped before record %d: %s", client_id, rec.seq, e)
                    return _reply(p, hdr_err=e)
                return _refused(mdt, client_id, rec, e, p)
            p.done = rec.seq
            p.applied += 1
        return _reply(p)
    finally:
        mdt.counters["batch_records"] += p.applied
        mdt.counters["batch_skipped"] += p.skipped


def _apply(mdt: Mdt, rec: mpb.UpdateRecord, client_id: str, prev: int) -> tuple[int, mpb.ReintReply]:
    """One record, in its own transaction that also marks it done (it follows `prev`); its transno
    and reply."""
    kind = rec.op.WhichOneof("op")
    new_fid = getattr(rec.op, kind).fid if kind in reint.CREATORS else None

    def wrap(fn: reint.TxFn) -> reint.TxFn:
        def in_tx(tx: Tx) -> mpb.ReintReply:
            if new_fid is not None:
                _check_new_fid(tx, new_fid, client_id)
            rep = fn(tx)
            if kind == "create" and rep.has_layout and (rep.layout.objects or rep.layout.mirrors):
                # the client writes its kept bytes to these objects next, and their size in a
                # record after: if it dies between, the objects say
                tx.size_from_objects(fid_from_pb(rep.attr.fid))
            if not tx.advance_replay_seq(client_id, rec.seq, prev):
                raise SeqConflict(client_id, rec.seq)
            return rep
        return in_tx

    cred = mdt.nodemap.cred(client_id, Cred(rec.uid, rec.gid, tuple(rec.groups)))
    _, rep, transno = reint.run(mdt, rec.op, cred, client_id, now_ns=rec.time_ns, wrap=wrap, replayed=True)
    return transno, rep


def _check_new_fid(tx: Tx, m: cpb.Fid, client_id: str) -> None:
    """A replayed creation names its FID, from a sequence handed out to this client."""
    fid = fid_from_pb(m)
    if fid.is_zero():
        raise LpError(errno.EINVAL, "a replayed creation must name its FID")
    tx.check_client_fid(fid, client_id)


def _refused(mdt: Mdt, client_id: str, rec: mpb.UpdateRecord, e: LpError, p: _Progress) -> mpb.ReintBatchReply:
    """Consume the refused record (its own transaction) and report it."""
    mdt.counters["batch_refused"] += 1
    log.info("record %d from %s refused: %s", rec.seq, client_id, e)
    ok, transno = mdt.store.write(lambda tx: tx.advance_replay_seq(client_id, rec.seq, p.done))
    if not ok:
        return _reply(p, hdr_err=SeqConflict(client_id, rec.seq))
    p.done, p.transno = rec.seq, transno        # the client drops the record once this is committed
    return _reply(p, hdr_err=e, failed_seq=rec.seq)


def _reply(p: _Progress, hdr_err: LpError | None = None, failed_seq: int = 0) -> mpb.ReintBatchReply:
    """The batch's reply: how far it got, and the error that stopped it."""
    hdr = rep_ok() if hdr_err is None else rep_err(hdr_err)
    hdr.transno = p.transno
    return mpb.ReintBatchReply(hdr=hdr, applied_seq=p.done, failed_seq=failed_seq, applied=p.applied,
                               layouts=p.layouts)
