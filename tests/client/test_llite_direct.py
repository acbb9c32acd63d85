"""The client's POSIX layer driven directly, without FUSE or a kernel: llite's
calls take and answer plain records (client/replies.py), against a real MDS
and real OSSes. A recording KernelCache stands in for the kernel's caches:
what llite tells it (forget this entry, these attributes) is checked too."""

from __future__ import annotations

import errno
import os
import stat
import threading

import pytest
import trio

from lustrepy.client.llbase import IT_OPEN
from lustrepy.client.replies import Caller, Entry, SetAttrRequest
from lustrepy.client.stack import ClientStack, build
from lustrepy.client.wbc import open_journal
from lustrepy.common.errors import LpError
from lustrepy.common.protocol import SA
from lustrepy.common.records import Cred
from tests.support.servers import Cluster, wait_for

pytestmark = pytest.mark.timeout(120)

ROOT_INO = 1
ROOT = Caller(4242, Cred(0, 0))
NOBODY = Caller(4243, Cred(65534, 65534))


class Kernel:
    """What llite asked the kernel to forget, in order (thread-safe: lock callbacks call it)."""

    def __init__(self) -> None:
        self.mu = threading.Lock()
        self.inodes: list[tuple[int, bool]] = []
        self.entries: list[tuple[int, bytes]] = []

    def inode(self, ino: int, attr_only: bool) -> None:
        with self.mu:
            self.inodes.append((ino, attr_only))

    def entry(self, parent: int, name: bytes) -> None:
        with self.mu:
            self.entries.append((parent, name))

    def store(self, ino: int, offset: int, data: bytes) -> None:
        pass

    def wait_sent(self, timeout: float) -> bool:
        return True


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("direct")
    c = Cluster(root)
    try:
        c.start(2)
        yield c
    finally:
        c.stop()


@pytest.fixture
def clients(cluster, tmp_path):
    made: list[ClientStack] = []

    def make(name: str, wbc: bool = False) -> tuple[ClientStack, Kernel]:
        kernel = Kernel()
        journal = None
        client_id = f"direct-{name}-{os.getpid()}-{len(made)}"
        if wbc:
            journal, client_id = open_journal(str(tmp_path / "journals"), cluster.fsname, f"/direct/{name}",
                                              client_id, max_records=4096)
        stack = build(cluster.mds.address, cluster.fsname, client_id, kernel, timeout=10.0, journal=journal,
                      wbc_age=600.0)      # records go when asked for, not by age: the test says when
        made.append(stack)
        return stack, kernel

    try:
        yield make
    finally:
        for s in made:
            trio.run(s.ll.flush_all)
            s.close(10.0)


def run(fn, *args):
    return trio.run(fn, *args)


async def _names(ll, ino: int) -> list[bytes]:
    fh = await ll.opendir(ino, ROOT)
    out: list[tuple[bytes, Entry]] = []
    await ll.readdir(fh, 0, lambda name, e, nxt: out.append((name, e)) is None)
    await ll.releasedir(fh)
    return sorted(n for n, _ in out if n not in (b".", b".."))


async def _write_file(ll, parent: int, name: bytes, data: bytes) -> Entry:
    opened, entry = await ll.create(parent, name, stat.S_IFREG | 0o644, os.O_WRONLY | os.O_CREAT, ROOT)
    assert await ll.write(opened.fh, 0, data) == len(data)
    await ll.flush(opened.fh)
    await ll.release(opened.fh)
    return entry


async def _read_file(ll, ino: int) -> bytes:
    opened = await ll.open(ino, os.O_RDONLY, ROOT)
    try:
        return await ll.read(opened.fh, 0, 1 << 20)
    finally:
        await ll.release(opened.fh)


@pytest.mark.parametrize("wbc", [False, True], ids=["server", "wbc"])
def test_make_write_read_list_and_remove(clients, wbc):
    a, _ = clients("a", wbc)
    ll = a.ll
    tag = f"mw-{wbc}".encode()

    async def main() -> None:
        d = await ll.mkdir(ROOT_INO, tag, 0o750, ROOT)
        assert stat.S_ISDIR(d.attr.mode) and d.attr.mode & 0o7777 == 0o750 and d.attr.nlink == 2
        f = await _write_file(ll, d.ino, b"f", b"hello")
        assert f.ino and stat.S_ISREG(f.attr.mode)
        again = await ll.lookup(d.ino, b"f", ROOT)
        assert again.ino == f.ino and again.attr.size == 5
        assert await _read_file(ll, f.ino) == b"hello"
        s = await ll.symlink(d.ino, b"s", b"f", ROOT)
        assert await ll.readlink(s.ino, ROOT) == b"f"
        assert await _names(ll, d.ino) == [b"f", b"s"]
        await ll.rename(d.ino, b"f", d.ino, b"g", 0, ROOT)
        assert (await ll.lookup(d.ino, b"f", ROOT)).ino == 0         # absent: a negative entry
        assert await _read_file(ll, (await ll.lookup(d.ino, b"g", ROOT)).ino) == b"hello"
        await ll.unlink(d.ino, b"g", ROOT)
        await ll.unlink(d.ino, b"s", ROOT)
        assert await _names(ll, d.ino) == []
        await ll.rmdir(ROOT_INO, tag, ROOT)
        assert (await ll.lookup(ROOT_INO, tag, ROOT)).ino == 0

    run(main)


@pytest.mark.parametrize("wbc", [False, True], ids=["server", "wbc"])
def test_open_with_o_trunc_empties_the_file(clients, wbc):
    a, _ = clients("a", wbc)
    ll = a.ll
    tag = f"tr-{wbc}".encode()

    async def main() -> None:
        d = await ll.mkdir(ROOT_INO, tag, 0o755, ROOT)
        f = await _write_file(ll, d.ino, b"f", b"longer content here\n")
        opened = await ll.open(f.ino, os.O_WRONLY | os.O_TRUNC, ROOT)
        assert await ll.write(opened.fh, 0, b"x\n") == 2
        await ll.release(opened.fh)
        assert (await ll.getattr(f.ino, ROOT)).attr.size == 2
        assert await _read_file(ll, f.ino) == b"x\n"

    run(main)


@pytest.mark.parametrize("wbc", [False, True], ids=["server", "wbc"])
def test_setattr_rules_apply_before_anything_changes(clients, wbc):
    a, _ = clients("a", wbc)
    ll = a.ll
    tag = f"sa-{wbc}".encode()

    async def main() -> None:
        d = await ll.mkdir(ROOT_INO, tag, 0o777, ROOT)
        f = await _write_file(ll, d.ino, b"f", b"data")
        with pytest.raises(LpError) as e:                   # chmod by someone not the owner
            await ll.setattr(f.ino, SetAttrRequest(int(SA.MODE), mode=0o777), None, NOBODY)
        assert e.value.errno == errno.EPERM
        assert (await ll.getattr(f.ino, ROOT)).attr.mode & 0o7777 == 0o644
        e2 = await ll.setattr(f.ino, SetAttrRequest(int(SA.MODE | SA.UID), mode=0o600, uid=65534), None, ROOT)
        assert e2.attr.mode & 0o7777 == 0o600 and e2.attr.uid == 65534
        e3 = await ll.setattr(f.ino, SetAttrRequest(int(SA.SIZE), size=2), None, ROOT)
        assert e3.attr.size == 2
        assert await _read_file(ll, f.ino) == b"da"

    run(main)


def test_another_clients_change_is_told_to_the_kernel_and_a_removed_file_is_stale(clients):
    (a, _), (b, kb) = clients("a"), clients("b")

    async def main() -> None:
        d = await a.ll.mkdir(ROOT_INO, b"two", 0o755, ROOT)
        await _write_file(a.ll, d.ino, b"f", b"from a")
        bd = await b.ll.lookup(ROOT_INO, b"two", ROOT)
        bf = await b.ll.lookup(bd.ino, b"f", ROOT)
        assert bf.attr.size == 6 and await _read_file(b.ll, bf.ino) == b"from a"
        await a.ll.unlink(d.ino, b"f", ROOT)                # calls back b's locks on the name
        wait_for(lambda: (bd.ino, b"f") in kb.entries, timeout=10, what="b told its kernel to forget f")
        with pytest.raises(LpError) as e:                   # b's kernel still names the old inode
            await b.ll.open(bf.ino, os.O_RDONLY, ROOT)
        assert e.value.errno == errno.ESTALE                # the kernel then walks the path again
        assert (await b.ll.lookup(bd.ino, b"f", ROOT)).ino == 0

    run(main)


def test_a_wbc_client_works_locally_until_another_client_looks(clients):
    (a, _), (b, _) = clients("a", wbc=True), clients("b")
    assert a.wbc is not None

    async def main() -> None:
        d = await a.ll.mkdir(ROOT_INO, b"alone", 0o755, ROOT)
        for i in range(20):
            await _write_file(a.ll, d.ino, b"f%d" % i, b"%d" % i)
        assert a.wbc.statistics()["pending"] > 0            # update records, not RPCs
        assert (await b.ll.lookup(ROOT_INO, b"alone", ROOT)).ino    # (b sees the directory itself)
        bd = await b.ll.lookup(ROOT_INO, b"alone", ROOT)    # calls the grant back: records flushed first
        assert await _names(b.ll, bd.ino) == sorted(b"f%d" % i for i in range(20))
        f7 = await b.ll.lookup(bd.ino, b"f7", ROOT)
        assert await _read_file(b.ll, f7.ino) == b"7"
        assert a.wbc.statistics()["pending"] == 0

    run(main)


def test_an_open_whose_lock_is_called_back_before_its_reply_is_read_keeps_the_files_objects(clients):
    """The MDS answers b's open, then a's rename over the file calls b's new lock back before
    b has read the reply: the lock's layout is forgotten at once, but the open handle still
    reads the file's bytes (an open orphan), never an empty file without objects."""
    (a, _), (b, _) = clients("a"), clients("b")

    async def setup() -> tuple[int, int]:
        d = await a.ll.mkdir(ROOT_INO, b"race", 0o755, ROOT)
        await _write_file(a.ll, d.ino, b"f", b"old bytes")
        await _write_file(a.ll, d.ino, b"g", b"new")
        bd = await b.ll.lookup(ROOT_INO, b"race", ROOT)
        return bd.ino, (await b.ll.lookup(bd.ino, b"f", ROOT)).ino

    d_ino, f_ino = run(setup)
    d_fid, f_fid = b.ll.table.get(d_ino).fid, b.ll.table.get(f_ino).fid
    real, called_back = b.mdc.intent, []

    def intent(ops, *args, **kw):
        rep = real(ops, *args, **kw)
        if ops & IT_OPEN and kw.get("fid") == f_fid and not called_back:
            a.mdc.rename(d_fid, b"g", d_fid, b"f", 0, ROOT.cred)     # calls b's locks on f back
            wait_for(lambda: not b.mdc.locks.usable(rep.lock.cookie), timeout=10, what="b's lock called back")
            called_back.append(rep.lock.cookie)
        return rep

    b.mdc.intent = intent

    async def read_back() -> tuple[bytes, int]:
        opened = await b.ll.open(f_ino, os.O_RDONLY, ROOT)
        try:
            size = (await b.ll.getattr(f_ino, ROOT)).attr.size
            return await b.ll.read(opened.fh, 0, 100), size
        finally:
            await b.ll.release(opened.fh)

    assert run(read_back) == (b"old bytes", 9)
    assert called_back


def _mds_count(stack: ClientStack, op: str) -> int:
    return dict(stack.mdc.info().counters).get(op, 0)


def test_a_new_files_absent_attributes_are_answered_here_until_another_client_sets_one(clients):
    """The kernel asks for security.capability before writes: a file the MDS just made for this
    client has no extended attributes, and that is known here under its XATTR lock. Another
    client's setxattr calls the lock back, and the attribute is then read from the MDS."""
    (a, _), (b, _) = clients("a"), clients("b")

    async def main() -> None:
        d = await a.ll.mkdir(ROOT_INO, b"xnew", 0o755, ROOT)
        opened, f = await a.ll.create(d.ino, b"f", stat.S_IFREG | 0o644, os.O_WRONLY | os.O_CREAT, ROOT)
        before = _mds_count(a, "getxattr")
        for name in (b"security.capability", b"user.x", b"trusted.y"):
            with pytest.raises(LpError) as e:
                await a.ll.getxattr(f.ino, name, ROOT)
            assert e.value.errno == errno.ENODATA
        with pytest.raises(LpError) as e:
            await a.ll.getxattr(d.ino, b"user.x", ROOT)         # a new directory too
        assert e.value.errno == errno.ENODATA
        assert _mds_count(a, "getxattr") == before              # answered here, no RPC
        await a.ll.release(opened.fh)

        bf = await b.ll.lookup((await b.ll.lookup(ROOT_INO, b"xnew", ROOT)).ino, b"f", ROOT)
        await b.ll.setxattr(bf.ino, b"user.x", b"from b", ROOT)  # calls a's XATTR lock back
        assert await a.ll.getxattr(f.ino, b"user.x", ROOT) == b"from b"
        await a.ll.setxattr(f.ino, b"user.z", b"from a", ROOT)
        assert await a.ll.getxattr(f.ino, b"user.z", ROOT) == b"from a"

    run(main)
