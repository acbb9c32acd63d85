"""The local cluster launcher: start the MDSs and N OSS on loopback under one directory, stop them again.

MDT0's MDS starts first; the MDSs of MDT1.. (`--index I --mdt0 ADDRESS`,
they register with MDT0) start with the OSSes. Layout under the root DIR:
DIR/mdt (MDT0), DIR/mdt<i> (MDT1..), DIR/ost<i> (server data), DIR/logs/*.log
(server output), DIR/run/*.port (ports the servers report), DIR/cluster.json
(the record, see clusterfile). Every start waits for a bounded time and, when
something fails, stops everything it started in that call before reporting.
Processes are only ever stopped by their recorded pid (procs.stop); this
module never imports the server packages: it runs their console scripts.
"""

from __future__ import annotations

import logging
import os
import subprocess
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TextIO

from lustrepy.common.errors import LpError, QuietError
from lustrepy.ctl import clustercerts, clusterfile, fldq, mounts, procs, query
from lustrepy.ctl.clusterfile import ClusterOptions, ClusterRecord, MountRecord, ServerRecord

log = logging.getLogger(__name__)

MDS_PROG = "lustrepy-mds"
OSS_PROG = "lustrepy-oss"
CLIENT_PROG = "lustrepy"
START_TIMEOUT_S = 30.0
MOUNT_TIMEOUT_S = 30.0
POLL_S = 0.1


class StartFailed(QuietError):
    """A start that failed; `tails` holds (log path, last lines) to show before the one-line reason."""

    def __init__(self, message: str, tails: Iterable[tuple[str, list[str]]] = ()) -> None:
        super().__init__(message, 1)
        self.tails = tuple(tails)


@dataclass(frozen=True, slots=True)
class Pending:
    """A server process started in this call, waiting to report its port."""

    rec: ServerRecord
    started: procs.Started
    port_file: Path


# ---- layout and argv -------------------------------------------------------------

def run_dir(root: str) -> Path:
    return Path(root) / "run"


def logs_dir(root: str) -> Path:
    return Path(root) / "logs"


def port_file(root: str, name: str) -> Path:
    return run_dir(root) / f"{name}.port"


def new_record(root: str, fsname: str, osts: int, options: ClusterOptions, mdts: int = 1) -> ClusterRecord:
    """The record of a cluster not started yet (no addresses, no pids)."""
    mds = ServerRecord(role="mds", index=None, address="", pid=0, argv=(), dir=str(Path(root) / "mdt"),
                       log=str(logs_dir(root) / "mds.log"))
    return ClusterRecord(root=root, fsname=fsname, state=clusterfile.STATE_STOPPED, mds=mds,
                         osts=tuple(ost_record(root, i) for i in range(osts)), options=options,
                         mdts=tuple(mdt_record(root, i) for i in range(1, mdts)))


def mdt_record(root: str, index: int) -> ServerRecord:
    """MDT `index` (1..): its MDS's data in DIR/mdt<index>, its log in DIR/logs/mdt<index>.log."""
    return ServerRecord(role="mds", index=index, address="", pid=0, argv=(), dir=str(Path(root) / f"mdt{index}"),
                        log=str(logs_dir(root) / f"mdt{index}.log"))


def ost_record(root: str, index: int) -> ServerRecord:
    return ServerRecord(role="oss", index=index, address="", pid=0, argv=(), dir=str(Path(root) / f"ost{index}"),
                        log=str(logs_dir(root) / f"ost{index}.log"))


def mds_argv(rec: ClusterRecord, port: int) -> tuple[str, ...]:
    """MDT0's MDS."""
    return _mds_argv(rec, rec.mds, port)


def mdt_argv(rec: ClusterRecord, mdt: ServerRecord, port: int) -> tuple[str, ...]:
    """The MDS of MDT1.., registering with MDT0's at its recorded address."""
    return _mds_argv(rec, mdt, port, ("--index", str(mdt.index), "--mdt0", rec.mds.address))


def _mds_argv(rec: ClusterRecord, mds: ServerRecord, port: int, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    o = rec.options
    argv = [procs.find_program(MDS_PROG), "--dir", mds.dir, "--listen", f"{o.host}:{port}",
            "--fsname", rec.fsname, "--port-file", str(port_file(rec.root, mds.name)), *extra]
    if o.heartbeat is not None:
        argv += ["--heartbeat-interval", _num(o.heartbeat)]
    if o.ost_timeout is not None:
        argv += ["--ost-timeout", _num(o.ost_timeout)]
    return tuple(argv) + clustercerts.server_args(rec, mds)


def oss_argv(rec: ClusterRecord, ost: ServerRecord, port: int) -> tuple[str, ...]:
    o = rec.options
    argv = [procs.find_program(OSS_PROG), "--dir", ost.dir, "--listen", f"{o.host}:{port}",
            "--mds", rec.mds.address, "--index", str(ost.index), "--fsname", rec.fsname,
            "--port-file", str(port_file(rec.root, ost.name)), "--node", local_node(ost.index or 0)]
    if o.capacity is not None:
        argv += ["--capacity", str(o.capacity)]
    if o.heartbeat is not None:
        argv += ["--heartbeat", _num(o.heartbeat)]
    return tuple(argv) + clustercerts.server_args(rec, ost)


def local_node(index: int) -> str:
    """The node an OSS of a local cluster is, for mirror placement: each its own, though they share this
    machine, so mirrored files have somewhere to go (on real hosts an OSS's node is its host)."""
    return f"local-ost{index}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# ---- liveness --------------------------------------------------------------------

def is_running(s: ServerRecord) -> bool:
    return procs.is_ours(s.pid, s.argv, s.starttime)


def running_servers(rec: ClusterRecord) -> list[ServerRecord]:
    return [s for s in rec.servers() if is_running(s)]


def liveness(rec: ClusterRecord) -> dict[str, bool]:
    return {s.name: is_running(s) for s in rec.servers()}


# ---- starting --------------------------------------------------------------------

def prepare(rec: ClusterRecord) -> None:
    """Certificates made where missing, and this process speaking as the cluster's admin."""
    clustercerts.ensure(rec)
    clustercerts.use_admin(rec)


def _spawn(rec: ServerRecord, argv: tuple[str, ...], pfile: Path) -> Pending:
    pfile.parent.mkdir(parents=True, exist_ok=True)
    pfile.unlink(missing_ok=True)
    Path(rec.dir).mkdir(parents=True, exist_ok=True)
    started = procs.spawn(argv, rec.log)
    return Pending(rec=replace(rec, pid=started.pid, argv=argv, starttime=started.starttime), started=started,
                   port_file=pfile)


def _read_port(pfile: Path) -> int | None:
    try:
        text = pfile.read_text().strip()
    except OSError:
        return None
    text = text.rpartition(":")[2]
    return int(text) if text.isdigit() and int(text) > 0 else None


def _prog(argv: tuple[str, ...]) -> str:
    return os.path.basename(argv[0]) if argv else "?"


def _exited(p: Pending) -> StartFailed:
    status = procs.exit_status(p.rec.pid)
    how = f"exited with status {status}" if status is not None else "exited"
    return StartFailed(f"{p.rec.name} ({_prog(p.rec.argv)}) {how} before serving; see {p.rec.log}",
                       [(p.rec.log, procs.log_tail(p.rec.log, p.started.log_offset))])


Build = Callable[[int], tuple[str, ...]]


def start_servers(root: str, specs: list[tuple[ServerRecord, Build]], host: str, deadline: float,
                  started: list[ServerRecord]) -> list[ServerRecord]:
    """Start servers (record, argv for a port) at once and wait until each has written its port file.

    Each is started on its recorded port (0 the first time: any free port). One
    that exits before serving on a recorded port (the port may have been taken
    meanwhile) is tried once more on any free port. Every process started is
    appended to `started` at once, so the caller can stop it whatever happens.
    Returns the records with pid, argv and address, in the order of `specs`.
    """
    pending: dict[str, tuple[Pending, Build, bool]] = {}
    for rec, build in specs:
        p = _spawn(rec, build(rec.port), port_file(root, rec.name))
        started.append(p.rec)
        pending[rec.name] = (p, build, rec.port == 0)
    done: dict[str, ServerRecord] = {}
    while pending:
        for name, (p, build, retried) in list(pending.items()):
            port = _read_port(p.port_file)
            if port is not None:
                done[name] = replace(p.rec, address=f"{host}:{port}")
                del pending[name]
                log.info("%s serves on %s:%d (pid %d)", name, host, port, p.rec.pid)
            elif not procs.alive(p.started):
                if retried:
                    raise _exited(p)
                log.warning("%s exited before serving on its recorded port %d; trying any free port",
                            name, p.rec.port)
                q = _spawn(p.rec, build(0), p.port_file)
                started.append(q.rec)
                pending[name] = (q, build, True)
        if not pending:
            break
        if time.monotonic() >= deadline:
            late = [p for p, _, _ in pending.values()]
            raise StartFailed(
                f"timed out waiting for {', '.join(p.rec.name for p in late)} to report a port",
                [(p.rec.log, procs.log_tail(p.rec.log, p.started.log_offset, 8)) for p in late])
        time.sleep(POLL_S)
    return [done[rec.name] for rec, _ in specs]


def wait_active(rec: ClusterRecord, indexes: set[int], deadline: float, mdts: frozenset[int] = frozenset()) -> None:
    """Wait until MDT0's MDS reports every OST in `indexes` and every MDT in `mdts` (1..) active,
    while every server stays up."""
    watched = [rec.mds] + [m for m in rec.mdts if m.index in mdts] + [o for o in rec.osts if o.index in indexes]
    last = "no answer yet"
    while True:
        for s in watched:
            if not is_running(s):
                procs.exit_status(s.pid)
                raise StartFailed(f"{s.name} ({_prog(s.argv)}, pid {s.pid}) exited while the cluster was "
                                  f"starting; see {s.log}", [(s.log, procs.log_tail(s.log, 0))])
        try:
            st = query.fs_status(rec.mds.address, timeout=2.0)
            missing = indexes - st.active_indexes()
            absent = mdts - _active_mdts(rec, mdts)
            if not missing and not absent:
                return
            last = "; ".join(
                ([f"OSTs {', '.join(map(str, sorted(missing)))} not active on the MDS"] if missing else [])
                + ([f"MDTs {', '.join(map(str, sorted(absent)))} not active on MDT0"] if absent else []))
        except QuietError as e:
            last = str(e)
        if time.monotonic() >= deadline:
            tails = [(s.log, procs.log_tail(s.log, 0, 6)) for s in watched]
            what = f"{len(indexes)} active OSTs" + (f" and {len(mdts)} more MDTs" if mdts else "")
            raise StartFailed(f"timed out waiting for {what}: {last}", tails)
        time.sleep(POLL_S * 2)


def _active_mdts(rec: ClusterRecord, wanted: frozenset[int]) -> frozenset[int]:
    """The MDTs MDT0 lists as active (none asked for: no question)."""
    if not wanted:
        return frozenset()
    listed = fldq.mdt_list(rec.mds.address, timeout=2.0) or ()
    return frozenset(m.index for m in listed if m.active)


def stop_records(servers: Iterable[ServerRecord]) -> list[int]:
    return procs.stop((s.pid, s.argv, s.starttime) for s in servers if s.pid)


def start_cluster(rec: ClusterRecord, timeout: float = START_TIMEOUT_S) -> ClusterRecord:
    """Start MDT0's MDS, then the other MDSs and every OSS, and wait for all MDTs and OSTs
    active; the running record.

    On any failure, stops what it started, records the cluster stopped, and raises StartFailed.
    """
    deadline = time.monotonic() + timeout
    for d in (logs_dir(rec.root), run_dir(rec.root)):
        d.mkdir(parents=True, exist_ok=True)
    prepare(rec)
    started: list[ServerRecord] = []
    try:
        host = rec.options.host
        [mds] = start_servers(rec.root, [(rec.mds, partial(mds_argv, rec))], host, deadline, started)
        rec = replace(rec, mds=mds, state=clusterfile.STATE_STARTING)
        clusterfile.save(rec)
        specs: list[tuple[ServerRecord, Build]] = [(m, partial(mdt_argv, rec, m)) for m in rec.mdts]
        specs += [(o, partial(oss_argv, rec, o)) for o in rec.osts]
        up = start_servers(rec.root, specs, host, deadline, started)
        rec = replace(rec, mdts=tuple(up[:len(rec.mdts)]), osts=tuple(up[len(rec.mdts):]))
        clusterfile.save(rec)
        wait_active(rec, {o.index for o in rec.osts if o.index is not None}, deadline,
                    frozenset(m.index for m in rec.mdts if m.index is not None))
    except BaseException:
        stop_records(started)
        clusterfile.save(_stopped(rec))
        raise
    rec = replace(rec, state=clusterfile.STATE_RUNNING)
    clusterfile.save(rec)
    return rec


def start_ost(rec: ClusterRecord, index: int, timeout: float = START_TIMEOUT_S) -> ClusterRecord:
    """Start one recorded OSS again and wait until the MDS reports it active; nothing else is touched."""
    ost = rec.ost(index)
    deadline = time.monotonic() + timeout
    prepare(rec)
    started: list[ServerRecord] = []
    try:
        [new] = start_servers(rec.root, [(ost, partial(oss_argv, rec, ost))], rec.options.host, deadline, started)
        rec = rec.with_ost(new)
        clusterfile.save(rec)
        wait_active(replace(rec, osts=(new,)), {index}, deadline)
    except BaseException:
        stop_records(started)
        clusterfile.save(rec.with_ost(replace(ost, pid=0)))
        raise
    return rec


def start_mds(rec: ClusterRecord, timeout: float = START_TIMEOUT_S) -> ClusterRecord:
    """Start the recorded MDS again on its address (clients and OSSes find it there and
    recover); the OSSes are not touched."""
    deadline = time.monotonic() + timeout
    prepare(rec)
    started: list[ServerRecord] = []
    try:
        [mds] = start_servers(rec.root, [(rec.mds, partial(mds_argv, rec))], rec.options.host, deadline, started)
        if mds.port != rec.mds.port:
            raise StartFailed(f"the MDS came back on port {mds.port}, not {rec.mds.port}: clients would not find it",
                              [(mds.log, procs.log_tail(mds.log, 0, 6))])
        rec = replace(rec, mds=mds)
        clusterfile.save(rec)
    except BaseException:
        stop_records(started)
        clusterfile.save(replace(rec, mds=replace(rec.mds, pid=0, starttime=0)))
        raise
    return rec


def recorded_mdt(rec: ClusterRecord, index: int) -> ServerRecord:
    for m in rec.mdts:
        if m.index == index:
            return m
    known = ", ".join(["0", *(str(m.index) for m in rec.mdts)])
    raise QuietError(f"the cluster at {rec.root} has no MDT {index} (MDTs: {known})")


def stop_mds(rec: ClusterRecord, *, kill: bool = False, index: int = 0) -> tuple[ClusterRecord, list[int]]:
    """Stop MDT `index`'s MDS (kill: SIGKILL, as a crash); clients, OSSes and the other MDTs keep
    running and wait for it."""
    srv = rec.mds if index == 0 else recorded_mdt(rec, index)
    pids = procs.stop([(srv.pid, srv.argv, srv.starttime)] if srv.pid else [],
                      sig=signal.SIGKILL if kill else signal.SIGTERM)
    gone = replace(srv, pid=0, starttime=0)
    rec = replace(rec, mds=gone) if index == 0 else rec.with_mdt(gone)
    clusterfile.save(rec)
    return rec, pids


def start_mdt(rec: ClusterRecord, index: int, timeout: float = START_TIMEOUT_S) -> ClusterRecord:
    """Start MDT `index` (1..) again on its address; it registers with MDT0 again."""
    mdt = recorded_mdt(rec, index)
    deadline = time.monotonic() + timeout
    prepare(rec)
    started: list[ServerRecord] = []
    try:
        [new] = start_servers(rec.root, [(mdt, partial(mdt_argv, rec, mdt))], rec.options.host, deadline, started)
        if new.port != mdt.port:
            raise StartFailed(f"MDT{index} came back on port {new.port}, not {mdt.port}: clients would not find it",
                              [(new.log, procs.log_tail(new.log, 0, 6))])
        rec = rec.with_mdt(new)
        clusterfile.save(rec)
    except BaseException:
        stop_records(started)
        clusterfile.save(rec.with_mdt(replace(mdt, pid=0, starttime=0)))
        raise
    return rec


def stop_ost(rec: ClusterRecord, index: int, *, kill: bool = False) -> tuple[ClusterRecord, list[int]]:
    """Stop one OSS (kill: SIGKILL, as a crash); it keeps its address for start_ost."""
    ost = rec.ost(index)
    pids = procs.stop([(ost.pid, ost.argv, ost.starttime)] if ost.pid else [],
                      sig=signal.SIGKILL if kill else signal.SIGTERM)
    rec = rec.with_ost(replace(ost, pid=0, starttime=0))
    clusterfile.save(rec)
    return rec, pids


def stop_cluster(rec: ClusterRecord) -> tuple[ClusterRecord, list[int]]:
    """Unmount the recorded mount (if mounted), then stop every recorded server; the stopped record."""
    if rec.mount and mounts.is_mounted(rec.mount.point):
        clients = client_pids(rec.mgs_source, rec.mount.point)
        mounts.unmount(rec.mount.point)
        # The client writes back what it still holds (dirty data, update records) after the
        # kernel lets go of the mount: the servers must outlive that.
        deadline = time.monotonic() + CLIENT_EXIT_S
        while any(procs.is_ours(pid, argv, start) for pid, argv, start in clients) and time.monotonic() < deadline:
            time.sleep(0.1)
    pids = stop_records(rec.servers())
    rec = _stopped(rec)
    clusterfile.save(rec)
    return rec, pids


def client_pids(source: str, point: str) -> list[tuple[int, tuple[str, ...], int]]:
    """(pid, argv, start time) of the lustrepy client processes serving exactly this source on
    this mount point: what procs.is_ours needs to tell when each is gone (a zombie counts)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        argv = procs.read_cmdline(pid)
        st = procs.read_stat(pid)
        if (argv and st and source in argv and point in argv
                and any(os.path.basename(a) == CLIENT_PROG for a in argv)):
            out.append((pid, argv, st[1]))
    return out


def _stopped(rec: ClusterRecord) -> ClusterRecord:
    return replace(rec, state=clusterfile.STATE_STOPPED, mount=None, mds=replace(rec.mds, pid=0, starttime=0),
                   osts=tuple(replace(o, pid=0, starttime=0) for o in rec.osts),
                   mdts=tuple(replace(m, pid=0, starttime=0) for m in rec.mdts))


# ---- mounting --------------------------------------------------------------------

CLIENT_EXIT_S = 60.0        # how long `cluster down` waits for the client to write back and exit


def _recovery_left(rec: ClusterRecord) -> float:
    """Seconds the MDS's recovery window has left (0: not recovering, or no answer)."""
    try:
        r = query.mds_info(rec.mds.address, timeout=5.0).recovery
    except (QuietError, LpError):
        return 0.0
    return r.time_left_s if r is not None and r.state == "recovering" else 0.0


def mount(rec: ClusterRecord, point: str, timeout: float = MOUNT_TIMEOUT_S, opts: str = "") -> ClusterRecord:
    """Run the FUSE client on `point` (with mount options `opts`, comma-separated) and wait until
    the kernel lists the mount; the record with it."""
    point = os.path.abspath(point)
    if mounts.is_mounted(point):
        raise StartFailed(f"{point} is already a mount point")
    prepare(rec)
    opts = clustercerts.mount_opts(rec, opts)
    left = _recovery_left(rec)
    if left:        # a restart after clients died: the mount waits for the MDS's recovery to end
        log.info("the MDS is recovering (%.0fs left): the mount waits for it", left)
        timeout += left
    Path(point).mkdir(parents=True, exist_ok=True)
    source = rec.mgs_source
    argv: tuple[str, ...] = (procs.find_program(CLIENT_PROG), source, point)
    if opts:
        argv += ("-o", opts)
    client_log = str(logs_dir(rec.root) / "client.log")
    Path(client_log).parent.mkdir(parents=True, exist_ok=True)
    with open(client_log, "ab") as logf:
        logf.write(f"--- lfsctl {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(argv)}\n".encode())
        logf.flush()
        offset = logf.tell()
        # Output goes to a file, not a pipe: the client daemon keeps its descriptors after the parent exits.
        p = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                             env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        status = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise StartFailed(f"{CLIENT_PROG} did not finish mounting {point} within {timeout:.0f}s",
                          [(client_log, procs.log_tail(client_log, offset))]) from None
    if status != 0:
        tail = procs.log_tail(client_log, offset)
        reason = tail[-1] if tail else f"exit status {status}"
        raise StartFailed(f"mounting {source} on {point} failed: {reason}", [(client_log, tail)])
    deadline = time.monotonic() + timeout
    while not mounts.lustrepy_mount_at(point):
        if time.monotonic() >= deadline:
            raise StartFailed(f"{CLIENT_PROG} exited 0 but {point} is not a lustrepy mount",
                              [(client_log, procs.log_tail(client_log, offset))])
        time.sleep(POLL_S)
    rec = replace(rec, mount=MountRecord(point=point, source=source))
    clusterfile.save(rec)
    return rec


def report_tails(failure: StartFailed, stream: TextIO | None = None) -> None:
    """Print the log tails a failure carries (before its one-line reason)."""
    out = stream or sys.stderr
    for path, lines in failure.tails:
        if not lines:
            continue
        out.write(f"--- last lines of {path}\n")
        for ln in lines:
            out.write(f"    {ln}\n")
    out.flush()
