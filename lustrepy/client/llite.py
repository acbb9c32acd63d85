"""The client's POSIX layer (Lustre's llite): what each file system call does.

Metadata goes to the MDS through the mdc with intents (lookup+getattr, open,
open+create in one RPC each) and reint updates, or is changed here under a
write-back-cache grant (nsbackend chooses, per directory); file data goes
through the data path (osc/lov). Names, attributes and layouts are cached
exactly as long as the MDS locks that cover them are held, and the kernel
gets long timeouts under those locks; when a lock is called back, the kernel
is told to forget (through the notifier threads, never inline). A regular
file's size is the MDS's only while no one has it open for write (size on
MDS); otherwise it comes from the OSS lock value blocks (glimpse).

The layer knows nothing of FUSE: it takes and answers the plain records of
replies.py, and fs.py adapts it to pyfuse3. Blocking RPCs run in worker
threads through lustrepy.rpc.bridge. Raises only LpError.

Its parts, one kind of call each:

- llbase.LliteBase: the state, lock callbacks, shared steps
- llnamei.NameOps: lookups, getattr, and changes of names
- llfile.FileOps: open, create, read, write, flush, fsync, close
- llattr.AttrOps: setattr and extended attributes
- lldir.DirOps: directories, statfs, the kernel's references, unmount
"""

from __future__ import annotations

from typing import Any

from lustrepy.client.inodes import Inode
from lustrepy.client.llattr import AttrOps
from lustrepy.client.llbase import KernelCache
from lustrepy.client.lldir import DirOps
from lustrepy.client.nsbackend import LocalNamespace, RemoteNamespace
from lustrepy.client.wbc import Wbc
from lustrepy.common.layout import Layout


class Llite(AttrOps, DirOps):
    """Every call of the POSIX layer (see the parts above)."""

    def __init__(self, mdc: Any, data: Any, notifier: KernelCache, wbc: Wbc | None = None) -> None:
        super().__init__(mdc, data, notifier, wbc)
        self.remote = RemoteNamespace(self)
        if self.local is not None:
            self._local_ns = lambda g: LocalNamespace(self, g)

    def layout_for_data(self, node: Inode) -> Layout | None:
        """The file's layout for its open data, read anew after its LAYOUT lock went (a worker thread)."""
        return self._layout_of(node)
