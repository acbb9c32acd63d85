"""`lfsctl cluster ...`: run a whole file system on this machine (M MDSs and N OSS on loopback).

  cluster up        start (or restart from the same data) and optionally mount
  cluster down      unmount, stop every recorded process, mark the cluster stopped
  cluster status    what cluster.json records and which processes still run
  cluster stop-ost  stop one OSS (--kill: SIGKILL, as a crash; the MDS marks its OST inactive)
  cluster start-ost start it again on its address (clients replay what it lost)
  cluster stop-mds  stop MDT0's MDS (--kill: SIGKILL, as a crash); clients wait for it
  cluster start-mds start it again on its address (clients and OSSes recover)

`--mdts M` (first start, default 1) adds MDT1..M-1, each its own MDS beside MDT0's.

Argument handling and printing only; the mechanics live in launcher.
Never stops a process by name: only the pids recorded in DIR/cluster.json.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from dataclasses import replace

from lustrepy.common.errors import QuietError
from lustrepy.ctl import clusterfile, launcher, output, target
from lustrepy.ctl.clusterfile import ClusterOptions, ClusterRecord

log = logging.getLogger(__name__)

DEFAULT_FSNAME = "testfs"
MAX_OSTS = 64
MAX_MDTS = 16
_FSNAME_RE = re.compile(r"^[A-Za-z0-9_]{1,8}$")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("cluster", help="start, stop and inspect a local cluster",
                       description="Run M MDSs and N OSS on this machine (loopback), with data, logs "
                                   "and the record cluster.json under one directory.")
    csub = p.add_subparsers(dest="cluster_cmd", metavar="COMMAND", required=True)
    root = argparse.ArgumentParser(add_help=False)
    root.add_argument("--root", metavar="DIR", default=None,
                      help=f"the cluster's directory (default: ${target.ENV_ROOT} or {target.DEFAULT_ROOT})")

    up = csub.add_parser("up", parents=parents + [root], help="start the cluster (restart it when stopped)",
                         description="Start one MDS per MDT and N OSS on 127.0.0.1 and wait until MDT0's MDS "
                                     "sees every MDT and OST active. On a stopped cluster, restart it from the "
                                     "same data.")
    up.add_argument("--osts", type=int, metavar="N",
                    help="number of OSTs (required the first time; default: as recorded)")
    up.add_argument("--mdts", type=int, metavar="M",
                    help="number of MDTs, each its own MDS (first start: default 1; then: as recorded)")
    up.add_argument("--fsname", help=f"file system name, up to 8 of [A-Za-z0-9_] (default {DEFAULT_FSNAME})")
    up.add_argument("--mount", metavar="MNT", help="also mount the file system on MNT with the lustrepy client")
    up.add_argument("--mount-opts", metavar="OPTS", default="",
                    help="mount options for --mount, comma-separated (e.g. wbc,journal=DIR)")
    up.add_argument("--plaintext", action="store_true",
                    help="no TLS and no certificates (first start; loopback development only)")
    up.add_argument("--capacity", type=int, metavar="BYTES", help="capacity each OSS reports (first start)")
    up.add_argument("--heartbeat", type=float, metavar="S", help="OSS heartbeat interval (server default)")
    up.add_argument("--ost-timeout", type=float, metavar="S",
                    help="seconds without heartbeat before the MDS marks an OST inactive (server default)")
    up.add_argument("--timeout", type=float, default=launcher.START_TIMEOUT_S, metavar="S",
                    help="how long to wait for the cluster to come up (default %(default)s)")
    up.set_defaults(func=run_up)

    down = csub.add_parser("down", parents=parents + [root], help="unmount and stop every recorded process",
                           description="Unmount the recorded mount, SIGTERM every recorded server (SIGKILL "
                                       "after 10 s) and mark the cluster stopped. Data is kept.")
    down.set_defaults(func=run_down)

    status = csub.add_parser("status", parents=parents + [root], help="show the recorded cluster",
                             description="Show cluster.json and whether each recorded process still runs.")
    status.set_defaults(func=run_status)

    for name, func, what in (("start-ost", run_start_ost, "start one recorded OSS again"),
                             ("stop-ost", run_stop_ost, "stop one OSS (its OST goes inactive)")):
        c = csub.add_parser(name, parents=parents + [root], help=what, description=what[0].upper() + what[1:] + ".")
        c.add_argument("--index", type=int, required=True, metavar="N", help="the OST index")
        if name == "stop-ost":
            c.add_argument("--kill", action="store_true", help="SIGKILL instead of SIGTERM, as a crash would")
        c.set_defaults(func=func)
    sm = csub.add_parser("stop-mds", parents=parents + [root], help="stop the MDS (clients wait for it)",
                         description="Stop the MDS; mounts and OSSes keep running and wait for it to "
                                     "come back. --kill sends SIGKILL, as a crash would.")
    sm.add_argument("--kill", action="store_true", help="SIGKILL instead of SIGTERM")
    sm.add_argument("--index", type=int, default=0, metavar="I", help="which MDT (default 0)")
    sm.set_defaults(func=run_stop_mds)
    st = csub.add_parser("start-mds", parents=parents + [root], help="start the MDS again on its address",
                         description="Start the recorded MDS again on the same address; clients and OSSes "
                                     "find it there, and clients replay what it lost.")
    st.add_argument("--index", type=int, default=0, metavar="I", help="which MDT (default 0)")
    st.set_defaults(func=run_start_mds)


def _root(args: argparse.Namespace) -> str:
    return os.path.abspath(args.root or target.default_root())


def _load(root: str) -> ClusterRecord:
    rec = clusterfile.load(root)
    if rec is None:
        raise QuietError(f"no cluster recorded at {root} (start one with `lfsctl cluster up --root {root} --osts N`)")
    return rec


def _emit(args: argparse.Namespace, rec: ClusterRecord, text: str, **extra: object) -> None:
    if args.json:
        d = clusterfile.to_json(rec)
        d["running"] = launcher.liveness(rec)
        d.update(extra)
        sys.stdout.write(output.to_json(d))
    else:
        sys.stdout.write(text)


def _failed(e: launcher.StartFailed, what: str) -> QuietError:
    launcher.report_tails(e)
    return QuietError(f"{what}: {e}", e.exitcode)


# ---- up ------------------------------------------------------------------------------

def _check_up_args(args: argparse.Namespace) -> None:
    if args.osts is not None and not 1 <= args.osts <= MAX_OSTS:
        raise QuietError(f"--osts must be between 1 and {MAX_OSTS}", 2)
    if args.mdts is not None and not 1 <= args.mdts <= MAX_MDTS:
        raise QuietError(f"--mdts must be between 1 and {MAX_MDTS}", 2)
    if args.fsname is not None and not _FSNAME_RE.match(args.fsname):
        raise QuietError(f"bad --fsname {args.fsname!r}: 1 to 8 letters, digits or '_'", 2)
    for name in ("heartbeat", "ost_timeout", "timeout", "capacity"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise QuietError(f"--{name.replace('_', '-')} must be positive", 2)


def _plan(args: argparse.Namespace, root: str, old: ClusterRecord | None) -> ClusterRecord:
    """The record to start: the recorded cluster (grown to --osts and --mdts), or a new one."""
    if old is None:
        if args.osts is None:
            raise QuietError(f"no cluster recorded at {root}: --osts N is required to create one", 2)
        opts = ClusterOptions(capacity=args.capacity, heartbeat=args.heartbeat, ost_timeout=args.ost_timeout,
                              plaintext=args.plaintext)
        return launcher.new_record(root, args.fsname or DEFAULT_FSNAME, args.osts, opts, mdts=args.mdts or 1)
    if args.fsname is not None and args.fsname != old.fsname:
        raise QuietError(f"the cluster at {root} is file system {old.fsname!r}, not {args.fsname!r}")
    n = len(old.osts) if args.osts is None else args.osts
    if n < len(old.osts):
        raise QuietError(f"the cluster at {root} has {len(old.osts)} OSTs; --osts {n} would leave some out "
                         f"(OSTs are never removed)")
    m = old.mdt_count if args.mdts is None else args.mdts
    if m < old.mdt_count:
        raise QuietError(f"the cluster at {root} has {old.mdt_count} MDTs; --mdts {m} would leave some out "
                         f"(MDTs are never removed)")
    given = {k: getattr(args, k) for k in ("capacity", "heartbeat", "ost_timeout") if getattr(args, k) is not None}
    opts = replace(old.options, **given)
    rec = ClusterRecord(root=root, fsname=old.fsname, state=old.state, mds=old.mds, osts=old.osts, options=opts,
                        mdts=old.mdts)
    for i in range(len(old.osts), n):
        rec = rec.with_ost(launcher.ost_record(root, i))
    for i in range(old.mdt_count, m):
        rec = rec.with_mdt(launcher.mdt_record(root, i))
    return rec


def run_up(args: argparse.Namespace) -> int:
    _check_up_args(args)
    root = _root(args)
    with clusterfile.locked(root):
        old = clusterfile.load(root)
        if old is not None:
            live = launcher.running_servers(old)
            if live:
                names = ", ".join(f"{s.name} pid {s.pid}" for s in live)
                raise QuietError(f"the cluster at {root} is already running ({names}); "
                                 f"`lfsctl cluster down --root {root}` stops it")
        rec = _plan(args, root, old)
        what = "restarting" if old is not None else "starting"
        log.info("%s %s at %s with %d MDTs and %d OSTs", what, rec.fsname, root, rec.mdt_count, len(rec.osts))
        try:
            rec = launcher.start_cluster(rec, timeout=args.timeout)
        except launcher.StartFailed as e:
            raise _failed(e, f"cluster up failed ({what} {rec.fsname} at {root}); stopped what was started") from None
        if args.mount:
            try:
                rec = launcher.mount(rec, args.mount, opts=args.mount_opts)
            except launcher.StartFailed as e:
                launcher.stop_cluster(rec)
                raise _failed(e, "cluster up failed; the cluster was stopped") from None
    text = output.render_cluster(rec) + f"stop it with: lfsctl cluster down --root {root}\n"
    _emit(args, rec, text)
    return 0


# ---- down, status ---------------------------------------------------------------------

def run_down(args: argparse.Namespace) -> int:
    root = _root(args)
    with clusterfile.locked(root):
        rec = _load(root)
        was_mounted = rec.mount.point if rec.mount else None
        rec, pids = launcher.stop_cluster(rec)
    if pids:
        text = f"stopped {rec.fsname} at {root}: pids {' '.join(map(str, pids))}"
    else:
        text = f"nothing was running for {rec.fsname} at {root}"
    if was_mounted:
        text += f"; unmounted {was_mounted}"
    _emit(args, rec, text + "\n", stopped_pids=pids)
    return 0


def run_status(args: argparse.Namespace) -> int:
    rec = _load(_root(args))
    _emit(args, rec, output.render_cluster(rec, launcher.liveness(rec)))
    return 0


# ---- the MDS ----------------------------------------------------------------------------

def run_stop_mds(args: argparse.Namespace) -> int:
    root = _root(args)
    with clusterfile.locked(root):
        rec = _load(root)
        rec, pids = launcher.stop_mds(rec, kill=args.kill, index=args.index)
    how = "killed" if args.kill else "stopped"
    which = "the MDS" if args.index == 0 else f"MDT{args.index}'s MDS"
    _emit(args, rec, f"{how} {which} (pid {pids[0]})\n" if pids else f"{which} was not running\n", stopped_pids=pids)
    return 0


def run_start_mds(args: argparse.Namespace) -> int:
    root = _root(args)
    with clusterfile.locked(root):
        rec = _load(root)
        if args.index:
            srv = launcher.recorded_mdt(rec, args.index)
            if launcher.is_running(srv):
                raise QuietError(f"MDT{args.index}'s MDS of the cluster at {root} is already running (pid {srv.pid})")
            try:
                rec = launcher.start_mdt(rec, args.index)
            except launcher.StartFailed as e:
                raise _failed(e, "start-mds failed") from None
            srv = launcher.recorded_mdt(rec, args.index)
            _emit(args, rec, f"started MDT{args.index}'s MDS on {srv.address} (pid {srv.pid})\n")
            return 0
        if launcher.is_running(rec.mds):
            raise QuietError(f"the MDS of the cluster at {root} is already running (pid {rec.mds.pid})")
        try:
            rec = launcher.start_mds(rec)
        except launcher.StartFailed as e:
            raise _failed(e, "start-mds failed") from None
    _emit(args, rec, f"started the MDS on {rec.mds.address} (pid {rec.mds.pid})\n")
    return 0


# ---- one OST ---------------------------------------------------------------------------

def run_stop_ost(args: argparse.Namespace) -> int:
    root = _root(args)
    with clusterfile.locked(root):
        rec = _load(root)
        ost = rec.ost(args.index)
        rec, pids = launcher.stop_ost(rec, args.index, kill=args.kill)
    how = "killed" if args.kill else "stopped"
    text = f"{how} {ost.name} (pid {pids[0]})\n" if pids else f"{ost.name} was not running\n"
    _emit(args, rec, text, stopped_pids=pids)
    return 0


def run_start_ost(args: argparse.Namespace) -> int:
    root = _root(args)
    with clusterfile.locked(root):
        rec = _load(root)
        ost = rec.ost(args.index)
        if launcher.is_running(ost):
            raise QuietError(f"{ost.name} of the cluster at {root} is already running (pid {ost.pid})")
        if not launcher.is_running(rec.mds):
            raise QuietError(f"the MDS of the cluster at {root} is not running; start the cluster with "
                             f"`lfsctl cluster up --root {root}`")
        try:
            rec = launcher.start_ost(rec, args.index)
        except launcher.StartFailed as e:
            raise _failed(e, f"start-ost {args.index} failed") from None
    new = rec.ost(args.index)
    _emit(args, rec, f"started {new.name} on {new.address} (pid {new.pid})\n")
    return 0
