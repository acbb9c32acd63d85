"""The MDT database schema, written once, with the meaning and invariants of every table.

lfsck.py has one check per invariant stated here; keep the two in step.
Also the storage form of layouts (compact JSON in a TEXT column).
Never opens a database by itself and never holds state.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from lustrepy.common.layout import Layout, Mirror, StripeObject

SCHEMA_VERSION = 1
STALE_WRITER = 2        # opens.writer of a writer whose size went stale (see the opens table)

_ORIGINAL = """
-- meta: the identity and counters of this MDT; exactly one row (id = 0).
--   fsname, uuid ("<fsname>-MDT<index, 4 hex digits>_UUID") and instance (random, new at every format) never change.
--   next_seq: the next FID sequence to hand out. Every sequence below it has been handed out (to a client
--     or to the MDS itself) and none at or above it: every inode's seq is ROOT_SEQ or below next_seq.
--     MDT1.. start at 0 (no sequence yet) until MDT0 gives them a range (fld).
--   mds_seq, mds_next_oid: the sequence the MDS names its own new inodes from and the end of the oids
--     reserved in it (1 .. SEQ_WIDTH + 1): the MDS hands out oids below it from memory and moves it on
--     by FID_RESERVE at a time (inodes.py), back to the first oid not handed out at a clean stop;
--     no inode in mds_seq has an oid >= mds_next_oid.
--     mds_seq = 0: none taken yet.
--   last_transno: with the replies' transnos, the transno of the last committed transaction: it is
--     max(last_transno, the greatest transno of a reply row). A transaction that writes a reply row
--     leaves last_transno alone (the row holds its transno); every other one sets it; before reply rows
--     are deleted last_transno is brought up to date. Only a clean stop leaves it exact on its own.
--   default_layout: the file system's default striping, used where no directory up to root sets one.
CREATE TABLE meta (
    id              INTEGER PRIMARY KEY CHECK (id = 0),
    fsname          TEXT NOT NULL,
    uuid            TEXT NOT NULL,
    instance        TEXT NOT NULL,
    schema_version  INTEGER NOT NULL,
    created_ns      INTEGER NOT NULL,
    next_seq        INTEGER NOT NULL,
    mds_seq         INTEGER NOT NULL,
    mds_next_oid    INTEGER NOT NULL,
    last_transno    INTEGER NOT NULL,
    default_layout  TEXT NOT NULL
);

-- inodes: every file, directory, symlink and special file, including unlinked ones still open.
--   (seq, oid, ver) is the FID: unique, never reused. id is a private row number the other tables use.
--   nlink of a non-directory = number of dentries naming it.
--   nlink of a named directory = 2 + number of its subdirectories; of a removed one (still open) = 0.
--   every directory but root is named by exactly one dentry; root by none, and root is a directory.
--   nlink = 0 iff the inode has an orphans row.
--   target is non-NULL iff the inode is a symlink, and then size = length of target.
--   layout only on regular files (NULL: no layout yet); default_layout only on directories (NULL: inherit).
--   generation >= 1, bumped by every change of the inode.
CREATE TABLE inodes (
    id              INTEGER PRIMARY KEY,
    seq             INTEGER NOT NULL,
    oid             INTEGER NOT NULL,
    ver             INTEGER NOT NULL,
    mode            INTEGER NOT NULL,
    nlink           INTEGER NOT NULL CHECK (nlink >= 0),
    uid             INTEGER NOT NULL,
    gid             INTEGER NOT NULL,
    size            INTEGER NOT NULL CHECK (size >= 0),
    blocks          INTEGER NOT NULL CHECK (blocks >= 0),
    atime_ns        INTEGER NOT NULL,
    mtime_ns        INTEGER NOT NULL,
    ctime_ns        INTEGER NOT NULL,
    rdev            INTEGER NOT NULL,
    generation      INTEGER NOT NULL CHECK (generation >= 1),
    target          BLOB,
    layout          TEXT,
    default_layout  TEXT,
    UNIQUE (seq, oid, ver)
);

-- dentries: the names. (parent, name) is unique; name is 1..255 bytes, no '/' or NUL, never . or ..
--   every dentry's parent is a directory with nlink >= 2, and its child an inode with nlink >= 1.
--   the directories form one tree under root: no directory is its own ancestor, every one is reachable.
--   id is the readdir cookie, drawn from an ever-increasing counter (AUTOINCREMENT: never reused), so
--   listing a directory in id order after a cookie never skips or repeats an entry when others come and go;
--   a rename keeps the entry's id.
CREATE TABLE dentries (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    parent  INTEGER NOT NULL REFERENCES inodes(id),
    name    BLOB NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    child   INTEGER NOT NULL REFERENCES inodes(id),
    UNIQUE (parent, name)
);
CREATE INDEX dentries_by_parent ON dentries(parent, id);
CREATE INDEX dentries_by_child ON dentries(child);

-- xattrs: extended attributes. Every row's inode exists; names are 1..255 bytes in the user., trusted.
--   or security. namespace, values at most 64 KiB; user.* only on regular files and directories.
CREATE TABLE xattrs (
    inode   INTEGER NOT NULL REFERENCES inodes(id),
    name    BLOB NOT NULL,
    value   BLOB NOT NULL,
    PRIMARY KEY (inode, name)
) WITHOUT ROWID;

-- opens: open handles held by clients; handle is never reused (AUTOINCREMENT). Every row's inode exists.
--   A client's rows go when it closes them or is evicted (close_client).
--   writer = 1 for a handle open for writing: while any exists, the inode's size is not
--   authoritative (the objects are being written); the last writer's close reports it.
--   writer = 2 (STALE_WRITER): a writer opened before the size was set by another handle (a
--   truncate); the size it reports may predate that change (its close can come after it), so
--   its close leaves the size to the objects (lost_sizes) instead.
CREATE TABLE opens (
    handle      INTEGER PRIMARY KEY AUTOINCREMENT,
    inode       INTEGER NOT NULL REFERENCES inodes(id),
    client_id   TEXT NOT NULL,
    opened_ns   INTEGER NOT NULL,
    writer      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX opens_by_inode ON opens(inode);
CREATE INDEX opens_by_client ON opens(client_id);

-- orphans: inodes that lost their last name while open; their objects are kept until the last close.
--   A row exists iff its inode has nlink = 0, and every orphan has at least one opens row
--   (the transaction that closes the last handle destroys the inode and queues its objects).
CREATE TABLE orphans (
    inode       INTEGER PRIMARY KEY REFERENCES inodes(id),
    since_ns    INTEGER NOT NULL
);

-- destroy_queue: OST objects to destroy, queued by the transaction that dropped their last reference,
--   and removed only when the OSS has destroyed them (destroy_done); survives restarts.
--   Each (ost_index, object_id) appears once, is named by no inode's layout and lies on a registered OST.
CREATE TABLE destroy_queue (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ost_index   INTEGER NOT NULL,
    object_id   INTEGER NOT NULL,
    queued_ns   INTEGER NOT NULL,
    UNIQUE (ost_index, object_id)
);

-- pools: object ids precreated on an OST and not yet given to any file: [next_id, last_id].
--   next_id <= last_id + 1 (equal: empty); last_id is the highest id ever precreated there, so precreation
--   continues from last_id + 1. No layout names an object of the pool, and every layout object on an OST
--   that has a pool has object_id < next_id. Every pool's OST is registered.
CREATE TABLE pools (
    ost_index   INTEGER PRIMARY KEY,
    next_id     INTEGER NOT NULL CHECK (next_id >= 1),
    last_id     INTEGER NOT NULL,
    CHECK (next_id <= last_id + 1)
);

-- osts: every OST that ever registered. index <-> uuid is one-to-one and never changes; address is the
--   latest one announced. Every object named by a layout lies on a registered OST.
CREATE TABLE osts (
    ost_index       INTEGER PRIMARY KEY,
    uuid            TEXT NOT NULL UNIQUE,
    address         TEXT NOT NULL,
    registered_ns   INTEGER NOT NULL
);

-- replies: saved replies for reply reconstruction. (client_id, xid) -> the transno and the encoded reply
--   of the change it answered, written by the transaction that made the change (a row of a request not
--   yet forgotten exists iff the change committed). No two rows share a transno. A row goes once its
--   client says it has the reply (replied_xid) and last_committed covers it, when its client disconnects,
--   or when its client stays away for the recovery window (replies.py): bounded by the clients.
CREATE TABLE replies (
    client_id   TEXT NOT NULL,
    xid         INTEGER NOT NULL,
    transno     INTEGER NOT NULL,
    reply       BLOB NOT NULL,
    PRIMARY KEY (client_id, xid)
);
"""

# Tables added after the first release, written so that running them again on any MDT
# (new or formatted before they existed) creates what is missing and changes nothing else.
ADDED = """
-- replay_seqs: how far each client's update records (the metadata write-back cache) have been replayed.
--   client_id -> last_seq: every record of that client with seq <= last_seq is done (applied, or refused
--   and consumed) and none above it is. last_seq >= 1 and only grows, one seq at a time: the transaction
--   that applies record N (or consumes a refused record N on its own) moves it from N - 1 to N, so a
--   record is executed at most once whatever is resent, or replayed after a restart of either side.
--   A client with no row has had no record done (its next record is seq 1). updated_ns: the time of the
--   transaction that last moved it (for an applied record, the time the record carries).
CREATE TABLE IF NOT EXISTS replay_seqs (
    client_id   TEXT PRIMARY KEY,
    last_seq    INTEGER NOT NULL CHECK (last_seq >= 1),
    updated_ns  INTEGER NOT NULL
) WITHOUT ROWID;

-- params: tunables set at run time (lfsctl set-param) and kept across restarts. name is the full
--   dotted name ("mds.callback_timeout"), value its canonical text; a row exists only while a run-time
--   setting is in force (reset deletes it). Applied at start over the configuration file and the
--   command line; a row naming no tunable of this MDS is ignored (and logged).
CREATE TABLE IF NOT EXISTS params (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    set_ns      INTEGER NOT NULL
) WITHOUT ROWID;

-- seq_owners: the client each FID sequence was handed to (AllocSeq). A client's replayed creations
--   must name FIDs from its own sequences; a sequence handed out before this table existed has no row
--   (any client's replay may use it, as before).
CREATE TABLE IF NOT EXISTS seq_owners (
    seq         INTEGER PRIMARY KEY,
    client_id   TEXT NOT NULL
);

-- lost_sizes: regular files whose size on the MDS is not authoritative although no writer has them open:
--   the last open for writing ended without the size its client knew (the MDS closed it at an eviction,
--   a disconnect or the end of recovery, or the writer could not learn it), while the bytes sit on the
--   objects. Clients glimpse the objects for the size of such a file (size_valid is false) until a
--   writer reports a size (a close or an fsync); the inode's row goes with it. Every row's inode is a
--   regular file whose layout names objects.
CREATE TABLE IF NOT EXISTS lost_sizes (
    inode       INTEGER PRIMARY KEY REFERENCES inodes(id) ON DELETE CASCADE,
    since_ns    INTEGER NOT NULL
);

-- clients: the clients connected to this MDT, as recovery knows them. A row is written (and synced)
--   when a client first connects and goes when it disconnects or is evicted. After a restart the MDS
--   waits for these clients to replay what it lost (recovery.window) before serving new requests.
CREATE TABLE IF NOT EXISTS clients (
    client_id   TEXT PRIMARY KEY,
    since_ns    INTEGER NOT NULL
) WITHOUT ROWID;

-- fld: where FID sequences live (Lustre's FID location database). The sequences [start, end) are
--   MDT `mdt`'s: it names its own inodes and its clients' from them and no other MDT does. MDT0 holds
--   every range of the file system (it hands them out, fld.py); MDT1.. hold their own. Ranges never
--   overlap; every inode's seq is ROOT_SEQ or lies in a range of this MDT.
CREATE TABLE IF NOT EXISTS fld (
    start       INTEGER PRIMARY KEY,
    end         INTEGER NOT NULL,
    mdt         INTEGER NOT NULL CHECK (mdt >= 0),
    CHECK (end > start)
);

-- remote_inodes: inodes a dentry of this MDT names that live on MDT `mdt` (Lustre's agent inodes; remote
--   directories, lfsctl mkdir -i). Such an inode row holds the FID, the file type, the owner at its
--   making, and nlink as a local directory's (2); its true attributes are on `mdt`. It has no layout,
--   xattrs, opens or entries here, and exactly one dentry.
CREATE TABLE IF NOT EXISTS remote_inodes (
    inode       INTEGER PRIMARY KEY REFERENCES inodes(id),
    mdt         INTEGER NOT NULL CHECK (mdt >= 0)
);

-- remote_names: names of this MDT's inodes that another MDT holds (Lustre's link EA): the directory
--   (parent FID, on MDT `mdt`) and the name. A directory whose name is on another MDT has one row and
--   no dentry here; lfsck checks each row against the other MDT's dentry.
CREATE TABLE IF NOT EXISTS remote_names (
    inode       INTEGER NOT NULL REFERENCES inodes(id),
    parent_seq  INTEGER NOT NULL,
    parent_oid  INTEGER NOT NULL,
    parent_ver  INTEGER NOT NULL,
    name        BLOB NOT NULL,
    mdt         INTEGER NOT NULL,           -- after the key: SQLite 3.40's quick_check misreads a WITHOUT
    PRIMARY KEY (inode, parent_seq, parent_oid, parent_ver, name)   -- ROWID column declared before it
) WITHOUT ROWID;

-- dne_log: operations across MDTs this MDT coordinates, written (and synced) before any MDT applies its
--   part and removed by the transaction that applies the last part here (mds/dne.py). `op` is JSON; a
--   row left after a crash is carried through (or taken back) by the redo thread, so no operation stays
--   half done.
CREATE TABLE IF NOT EXISTS dne_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    op          TEXT NOT NULL,
    created_ns  INTEGER NOT NULL
);

-- dne_done: parts of other MDTs' operations this MDT applied: (coordinator uuid, op id, kind of part) ->
--   the reply it gave, written by the transaction that applied the part, so a resent part is answered,
--   not applied twice. An operation's rows go when its coordinator says it is over (DneUpdate, kind NONE).
CREATE TABLE IF NOT EXISTS dne_done (
    coordinator TEXT NOT NULL,
    op_id       INTEGER NOT NULL,
    kind        INTEGER NOT NULL,
    reply       BLOB NOT NULL,
    done_ns     INTEGER NOT NULL,
    PRIMARY KEY (coordinator, op_id, kind)
) WITHOUT ROWID;

-- dir_stripes: this MDT's directories that are stripes of a striped directory (mds/dirstripe.py). The
--   master (stripe 0, named by a dentry as any directory) lists every stripe in `stripes` (JSON: [seq, oid,
--   ver, mdt] each, stripe 0 first); a shard (stripe `idx` > 0) has no dentry and names its master. A name
--   lives in the stripe its hash picks; `dying` (set while the directory is removed) refuses new names.
CREATE TABLE IF NOT EXISTS dir_stripes (
    inode       INTEGER PRIMARY KEY REFERENCES inodes(id),
    idx         INTEGER NOT NULL CHECK (idx >= 0),
    count       INTEGER NOT NULL CHECK (count > idx),
    hash        TEXT NOT NULL,
    master_seq  INTEGER NOT NULL,
    master_oid  INTEGER NOT NULL,
    master_ver  INTEGER NOT NULL,
    master_mdt  INTEGER NOT NULL,
    dying       INTEGER NOT NULL DEFAULT 0,
    stripes     TEXT
);

-- dir_defaults: how new subdirectories of a directory are striped (lfsctl setdirstripe -D): over `count`
--   MDTs by `hash`; inherited by the striped subdirectories made so. A striped directory has the row on
--   every stripe.
CREATE TABLE IF NOT EXISTS dir_defaults (
    inode       INTEGER PRIMARY KEY REFERENCES inodes(id),
    count       INTEGER NOT NULL CHECK (count >= 1),
    hash        TEXT NOT NULL
);

-- rename_lock (MDT0 only): the file system's rename lock (Lustre's big rename lock), held while a directory
--   moves to another parent and the file system has several MDTs, so that no two such moves check for
--   loops against each other's half-done state. At most one row: the holder (the coordinating MDT's
--   uuid) and the id of the operation in its dne_log, which lets it go when the operation ends (also
--   after a crash of either MDS: the log row stays until then).
CREATE TABLE IF NOT EXISTS rename_lock (
    id          INTEGER PRIMARY KEY CHECK (id = 0),
    holder      TEXT NOT NULL,
    op_id       INTEGER NOT NULL,
    since_ns    INTEGER NOT NULL
);

-- mdts (MDT0 only): every other MDT that ever registered. index <-> (uuid, instance) is one-to-one and
--   never changes (instance: the random one of its format, so a reformatted MDT cannot pose as the one
--   whose inodes other MDTs name); address is the latest one announced.
CREATE TABLE IF NOT EXISTS mdts (
    mdt_index       INTEGER PRIMARY KEY CHECK (mdt_index > 0),
    uuid            TEXT NOT NULL UNIQUE,
    instance        TEXT NOT NULL,
    address         TEXT NOT NULL,
    registered_ns   INTEGER NOT NULL
);
"""
SCHEMA = _ORIGINAL + ADDED

# The inode columns that make an Attr, in Attr's field order after the FID.
ATTR_COLUMNS = ("seq, oid, ver, mode, nlink, uid, gid, size, blocks, "
                "atime_ns, mtime_ns, ctime_ns, rdev, generation")


def attr_columns(alias: str) -> str:
    """ATTR_COLUMNS of the inodes table named `alias` in a join."""
    return ", ".join(f"{alias}.{c.strip()}" for c in ATTR_COLUMNS.split(","))


def create(conn: sqlite3.Connection) -> None:
    """Create every table and index on an empty database."""
    conn.executescript(SCHEMA)


def add_missing(conn: sqlite3.Connection) -> None:
    """Create the tables added after the first release that an older MDT lacks (no migration:
    they start empty, which is their meaning on a file system that never had them)."""
    conn.executescript(ADDED)


# ---- layouts as stored ------------------------------------------------------------------

# Every object a stored layout names, a mirrored file's too: (inode, stripe, ost, obj).
NAMED_OBJECTS = (
    "SELECT i.id AS inode, j.key AS stripe, json_extract(j.value, '$[0]') AS ost, "
    "json_extract(j.value, '$[1]') AS obj FROM inodes i, json_each(i.layout, '$.o') AS j WHERE i.layout IS NOT NULL "
    "UNION ALL SELECT i.id, o.key, json_extract(o.value, '$[0]'), json_extract(o.value, '$[1]') "
    "FROM inodes i, json_each(i.layout, '$.m') AS m, json_each(m.value, '$.l.o') AS o WHERE i.layout IS NOT NULL")

def layout_to_db(layout: Layout) -> str:
    d: dict[str, object] = {"ss": layout.stripe_size, "sc": layout.stripe_count, "so": layout.stripe_offset}
    if layout.pattern != "raid0":
        d["p"] = layout.pattern
    if layout.generation:
        d["g"] = layout.generation
    if layout.objects:
        d["o"] = [[o.ost_index, o.object_id] for o in layout.objects]
    if layout.mirror_count:
        d["n"] = layout.mirror_count
    if layout.mirrors:
        d["m"] = [{"id": m.mirror_id, "st": int(m.stale), "sy": int(m.syncing), "l": json.loads(layout_to_db(m.layout))}
                  for m in layout.mirrors]
    return json.dumps(d, separators=(",", ":"))


def layout_from_db(text: str) -> Layout:
    return _layout_from(json.loads(text))


def _layout_from(d: dict[str, Any]) -> Layout:
    return Layout(stripe_size=d["ss"], stripe_count=d["sc"], stripe_offset=d["so"],
                  pattern=d.get("p", "raid0"), generation=d.get("g", 0), mirror_count=d.get("n", 0),
                  objects=tuple(StripeObject(i, o) for i, o in d.get("o", ())),
                  mirrors=tuple(Mirror(m["id"], _layout_from(m["l"]), bool(m["st"]), bool(m.get("sy", 0)))
                                for m in d.get("m", ())))
