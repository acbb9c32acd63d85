"""A name replaced by rename while others read it: every reader opens one whole
version, never fails. A reader's cached dentry may still name the replaced
inode; its open by FID is answered ESTALE, and the kernel walks the path again
(LOOKUP_REVAL), which must then find the new inode. Checked on the writer's own
mount and on a second mount, server side and with the write-back cache."""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.mounts import Mount
from tests.support.servers import Cluster

pytestmark = pytest.mark.timeout(300)

ROUNDS = 300
MODES = {"server": ("nowbc",), "wbc": ("wbc",)}
# The writer: the shell idiom that replaces a file atomically.
WRITER = 'for i in $(seq {n}); do echo v$i > tmp.$i && mv -f tmp.$i target || exit 1; done'
# A reader of its own, as a shell user would run it: one `cat` process per read.
CAT_READER = 'while [ ! -e "$1" ]; do if out=$(cat target); then echo "ok $out"; else echo fail; fi; done'


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("stale")
    c = Cluster(root)
    try:
        c.start(2)
        yield c
    finally:
        c.stop()


@pytest.fixture
def mounts(cluster, tmp_path):
    made: list[Mount] = []

    def make(name: str, mode: str) -> Path:
        path = tmp_path / name
        opts = MODES[mode] + ((f"journal={tmp_path / (name + '.journal')}",) if mode == "wbc" else ())
        m = Mount(f"{cluster.mds.address}:/{cluster.fsname}", path, tmp_path / f"{name}.log")
        made.append(m)
        m.start(*opts)
        return path

    try:
        yield make
    finally:
        for m in made:
            m.stop()


class Readers:
    """Threads that open and read `target` in a loop, and a shell loop of `cat`s, until stopped."""

    def __init__(self, dirs: list[Path], stop_file: Path) -> None:
        self.stop = threading.Event()
        self.stop_file = stop_file
        self.failures: list[str] = []
        self.seen: Counter[bytes] = Counter()
        self.threads = [threading.Thread(target=self._read, args=(d / "target",), daemon=True) for d in dirs]
        self.cats = [subprocess.Popen(["bash", "-c", CAT_READER, "cat-reader", str(stop_file)], cwd=d,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE) for d in dirs]

    def __enter__(self) -> "Readers":
        for t in self.threads:
            t.start()
        return self

    def _read(self, path: Path) -> None:
        while not self.stop.is_set():
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as e:
                self.failures.append(f"open/read: {e}")
                continue
            self.seen[data] += 1

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.stop_file.touch()
        for t in self.threads:
            t.join(30)
        for p in self.cats:
            try:
                out, err = p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
            for line in out.decode().splitlines():
                if line.startswith("ok "):
                    self.seen[line[3:].encode() + b"\n"] += 1
                else:
                    self.failures.append(f"cat: {line}")
            self.failures.extend(f"cat: {e}" for e in err.decode().splitlines())


def _race(writer_dir: Path, reader_dirs: list[Path], stop_file: Path) -> Readers:
    """The writer replaces `target` ROUNDS times while the readers read it."""
    (writer_dir / "target").write_bytes(b"v0\n")
    for d in reader_dirs:
        deadline = time.monotonic() + 10
        while not (d / "target").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    with Readers(reader_dirs, stop_file) as readers:
        w = subprocess.run(["bash", "-c", WRITER.format(n=ROUNDS)], cwd=writer_dir, capture_output=True,
                           timeout=240)
        time.sleep(0.2)
    assert w.returncode == 0, w.stderr.decode()
    return readers


def _check(readers: Readers) -> None:
    written = {f"v{i}\n".encode() for i in range(ROUNDS + 1)}
    assert readers.failures == [], f"{len(readers.failures)} failed reads, first: {readers.failures[:5]}"
    assert sum(readers.seen.values()) > ROUNDS / 3     # the readers really ran during the writes
    wrong = {k: v for k, v in readers.seen.items() if k not in written}
    assert wrong == {}, f"read content never written: {wrong}"


@pytest.mark.parametrize("mode", MODES)
def test_readers_on_the_writers_mount_never_fail(mounts, tmp_path, mode):
    a = mounts("a", mode)
    d = a / f"same-{mode}"
    d.mkdir()
    readers = _race(d, [d], tmp_path / "stop")
    _check(readers)
    assert (d / "target").read_bytes() == f"v{ROUNDS}\n".encode()


@pytest.mark.parametrize("mode", MODES)
def test_readers_on_another_mount_never_fail(mounts, tmp_path, mode):
    a, b = mounts("a", mode), mounts("b", mode)
    name = f"other-{mode}"
    (a / name).mkdir()
    readers = _race(a / name, [b / name, a / name], tmp_path / "stop")
    _check(readers)
    assert (b / name / "target").read_bytes() == f"v{ROUNDS}\n".encode()
