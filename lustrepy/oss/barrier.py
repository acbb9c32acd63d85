"""The OST's replay barrier (`lfsctl replay-barrier --ost N`): objects' bytes as they stood at it.

For recovery tests, as Lustre's `lctl replay_barrier`: from the barrier on, nothing written
counts as durable, and the next start goes back to the objects' contents at the barrier, as a
power cut on the OSS host would lose what was not yet synced. Before the first change of an
object after the barrier (a write or a punch, under the object's lock) its file is copied to
DIR/barrier/<id>; at the next start each saved copy replaces its object, then the directory goes.
Object creation and destruction are not rolled back (precreation syncs before it answers, and
the MDS retries destroys until they are confirmed). Raises plain OSError.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading

from lustrepy.oss.osd import FANOUT, Osd

log = logging.getLogger(__name__)

BARRIER_DIR = "barrier"


class Barrier:
    """Copy-before-change of objects after a barrier; `roll_back` at the next start."""

    def __init__(self, osd: Osd) -> None:
        self.osd = osd
        self.dir = os.path.join(osd.root, BARRIER_DIR)
        self._mu = threading.Lock()        # _saved, active
        self._saved: set[int] = set()
        self.active = False

    def set(self) -> None:
        os.makedirs(self.dir, exist_ok=True)
        with self._mu:
            self.active = True

    def before_change(self, oid: int) -> None:
        """Called under the object's lock before it changes: keep its bytes once."""
        with self._mu:
            if not self.active or oid in self._saved:
                return
            self._saved.add(oid)
        dst = os.path.join(self.dir, str(oid))
        try:
            shutil.copyfile(self.osd.path(oid), dst)
        except FileNotFoundError:
            return                  # no such object: nothing to go back to
        except OSError:
            with self._mu:
                self._saved.discard(oid)
            raise

    def roll_back(self) -> int:
        """At start: put back every object's bytes saved at the last barrier; how many."""
        if not os.path.isdir(self.dir):
            return 0
        n = 0
        for name in sorted(os.listdir(self.dir)):
            src = os.path.join(self.dir, name)
            if not name.isdigit():
                os.unlink(src)
                continue
            dst = self.osd.path(int(name))
            if os.path.exists(dst):
                with open(src, "rb") as f:
                    os.fsync(f.fileno())
                os.replace(src, dst)
                n += 1
            else:
                os.unlink(src)
        self.osd.sync_dirs_of(range(FANOUT))
        os.rmdir(self.dir)
        log.warning("replay barrier: %d objects went back to their contents at the barrier", n)
        return n
