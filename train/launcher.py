"""Runs launched side by side on this machine: one child process per run, the cores split
between them on the CPU, one GPU each with GPUs; a stop (Ctrl-C, SIGTERM, SIGHUP) reaches every
child, a launcher that dies (``kill -9``) takes its runs with it (each run that calls
``end_with_launcher`` stops as the launcher would have stopped it, saying so in its log), and
each run's status and error line are kept for the comparison report.

The trajectory and saliency launchers (``train.trajectory.parallel``,
``train.saliency.parallel``) all start their runs through ``LocalLauncher``.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from train.run_folder import LOCK, RunFolderBusy, writing_to
from train.summary import COMPARISON_PNG, SUMMARY_JSON, SUMMARY_MD, RunStatus
from trajkit.cli import (
    caused_by_interrupt,
    default_workers,
    failed_io,
    one_line,
    restore_signals,
    stop_on_signals,
)

STOP_GRACE_SECONDS = 60.0
# A launcher stopped outside its runs' lifetime (before they start, or as they end).
INTERRUPTED = (
    "runs already started keep their last.pt; continue with the same command plus --resume"
)
POLL_SECONDS = 0.5
LOG = "train.log"  # a run's output, in its folder
STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STDERR_TAIL_BYTES = 65_536  # of a run's stderr, where its error is
ERROR_CHARS = 300  # of a run's error in the summary
PR_SET_PDEATHSIG = 1  # linux/prctl.h
LAUNCHER_PID = "TRAIN_LAUNCHER_PID"  # in a run's environment: the launcher it ends with
PARENT_CHECK_SECONDS = 0.5
LAUNCH_RECORD = "launch.json"  # train.parallel's record of the runs each launch named
RESERVED_NAMES = (SUMMARY_JSON, SUMMARY_MD, COMPARISON_PNG, LAUNCH_RECORD, LOCK, "slurm")
"""What the launchers write beside the runs in ``--out`` (``slurm/``: train.slurm's scripts),
so no run's folder: a run named ``slurm`` trained where the sbatch scripts go."""


def share_machine(device: str, runs: int) -> tuple[int, int | None]:
    """The GPUs to hand out one per run, or without any, the torch threads of each of ``runs``
    CPU runs (the cores split evenly)."""
    gpus = gpu_count(device)
    return gpus, None if gpus else max(1, default_workers() // runs)


def gpu_count(device: str) -> int:
    if device == "cpu":
        return 0
    import torch

    return torch.cuda.device_count()


def reserved_name(name: str) -> str | None:
    """Why ``name`` cannot name a run folder beside the launcher's own files, or None. Compared
    ignoring case: on macOS and Windows "Summary.md" is summary.md."""
    if name.casefold() in RESERVED_NAMES:
        return (
            f"{name!r} is taken by what the launcher writes beside the runs "
            f"({', '.join(RESERVED_NAMES)}); choose another"
        )
    return None


def unusable_run_path(out: Path, name: str) -> str | None:
    """Why ``out/name`` cannot take a run, or None: a name the launcher's own files take, or
    something that is no folder there (a file, a dangling or looping link), or a log that is
    no regular file of its own (a FIFO blocked the launcher's open for ever, a link wrote
    elsewhere or looped). Checked for every run before any starts: found when its turn came,
    it stopped the runs already training."""
    if why := reserved_name(name):
        return f"run {why}"
    run = out / name
    if os.path.lexists(run) and not run.is_dir():
        return f"{run} exists and is not a folder"
    log = run / LOG
    if os.path.lexists(log) and (log.is_symlink() or not log.is_file()):
        return f"{log} is not a regular file"
    return None


def _prctl() -> Callable | None:
    """Linux's ``prctl``, or None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux kill the child when the launcher dies: killed with
    SIGKILL it cannot stop its runs, which trained on as orphans and wrote into the logs of
    the runs a ``--resume`` started. SIGKILL, as nothing can ignore it: with SIGINT a run
    that ignored it, or never got back to Python to handle it, trained on; a run that calls
    ``end_with_launcher`` stops more gently. None elsewhere."""
    if (prctl := _prctl()) is None:
        return None
    launcher, stop = os.getpid(), ctypes.c_ulong(signal.SIGKILL)  # prctl reads an unsigned long

    def ends_with_launcher() -> None:
        prctl(PR_SET_PDEATHSIG, stop)
        if os.getppid() != launcher:  # it died before the line above
            os._exit(130)

    return ends_with_launcher


def end_with_launcher(grace: float = STOP_GRACE_SECONDS) -> None:
    """In a run this module's launcher started (anywhere else nothing): once the launcher is
    gone (``kill -9``, the OOM killer), stop the run as the launcher would have, in a thread
    that watches it: a line in the run's log, SIGTERM, and after ``grace`` seconds SIGKILL to
    the run and its data-loading workers. It takes over from the kernel's SIGKILL, which cut
    a checkpoint save short and left the log without a word of the stop. The run's stderr,
    the dead launcher's pipe, is pointed at its stdout, the log, for its stop line. Works
    where ``prctl`` does not (macOS) too."""
    parent = os.getppid()
    if os.environ.get(LAUNCHER_PID) != str(parent):  # not the launcher's own child
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        with suppress(OSError):  # a full disk: the stop matters more than its line
            os.dup2(1, 2)
            os.write(2, f"the launcher (pid {parent}) is gone: stopping this run\n".encode())
        with suppress(OSError):  # no main thread any more: the run is ending
            signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)  # wakes a sleep
        time.sleep(grace)
        if os.getpgrp() == os.getpid():  # a session of its own, as the launcher starts it
            os.killpg(os.getpid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="end-with-launcher", daemon=True).start()
    if (prctl := _prctl()) is not None:
        prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(0))  # the watch above stops the run now


@contextmanager
def stops_noted() -> Iterator[list[int]]:
    """For the length of the block a stop (Ctrl-C, SIGTERM, SIGHUP) is noted in the list
    yielded, not raised: a second Ctrl-C while the runs stopped cut the stop short, said
    "stopped all runs" while one still trained, and left no summary. A signal ignored (nohup)
    stays ignored. Only the main thread can handle signals; elsewhere nothing is noted."""
    noted: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield noted
        return
    previous = {s: signal.getsignal(s) for s in STOPS}
    try:
        for signum, handler in previous.items():
            if handler is not signal.SIG_IGN:
                signal.signal(signum, lambda got, frame: noted.append(got))
        yield noted
    finally:
        restore_signals(previous)


def failure_line(stderr: bytes) -> str | None:
    """A failed run's error from the end of its stderr: a traceback's exception, all of its
    lines (the last line alone was the second line of a two-line message), or else the last
    line. Read from the run's own stderr, not its log: another process appending to the log
    (an orphan of an earlier launcher) put its own line there."""
    lines = [x.rstrip() for x in stderr.decode(errors="replace").splitlines() if x.strip()]
    if not lines:
        return None
    header = max(
        (i for i, x in enumerate(lines) if x.startswith("Traceback (most recent call last)")),
        default=None,
    )
    if header is None:
        said = lines[-1]
    else:  # after the last frame's line, source and carets: the exception, however indented
        files = [i for i in range(header, len(lines)) if lines[i].startswith("  File ")]
        start = files[-1] + 1 if files else header + 1
        while start < len(lines) - 1 and lines[start].startswith("    "):
            start += 1
        said = "\n".join(lines[start:])
    said = one_line(said)
    return said if len(said) <= ERROR_CHARS else said[: ERROR_CHARS - 3] + "..."


@dataclass
class Child:
    """A run's process, and what the launcher keeps of it."""

    proc: subprocess.Popen
    started: float
    gpu: int | None
    log: int  # the run's log, open to append what the run writes on stderr
    stderr_tail: bytes = b""


class LocalLauncher:
    """Child processes ``python -m MODULE ARGS``, one per run; one per GPU at a time, or all at
    once on the CPU. ``summarise(out, statuses)`` rewrites the comparison after each run ends."""

    def __init__(
        self,
        out: Path,
        jobs: dict[str, list[str]],
        gpus: int,
        threads: int | None,
        *,
        module: str,
        summarise: Callable[[Path, list[RunStatus]], list[dict]],
    ) -> None:
        self.out, self.jobs, self.gpus, self.threads = out, jobs, gpus, threads
        self.module = module
        self._write_summary = summarise
        self.statuses = {n: RunStatus(n) for n in jobs}
        self.procs: dict[str, Child] = {}
        self.free_gpus = list(range(gpus))
        self._summary_error: str | None = None
        self._stopped: set[str] = set()  # runs this launcher stopped itself

    def _start(self, name: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", LAUNCHER_PID: str(os.getpid())}
        gpu = self.free_gpus.pop(0) if self.gpus else None
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(gpu)
        elif self.threads:
            env["OMP_NUM_THREADS"] = str(self.threads)
        (self.out / name).mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        log = os.open(self.out / name / LOG, flags, 0o666)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.jobs[name]],
                stdout=log,
                stderr=subprocess.PIPE,  # copied to the log here, its end kept for the error
                env=env,
                start_new_session=True,  # Ctrl-C reaches the launcher, which stops the runs itself
                preexec_fn=_parent_death_signal(),
            )
        except BaseException:
            os.close(log)
            raise
        os.set_blocking(proc.stderr.fileno(), False)
        self.procs[name] = Child(proc, time.monotonic(), gpu, log)
        self.statuses[name].status = "running"
        print(
            f"started {name} (pid {proc.pid}" + (f", GPU {gpu})" if gpu is not None else ")"),
            flush=True,
        )

    def _copy_stderr(self, child: Child) -> None:
        """What the run has written on stderr so far, into its log."""
        pipe = child.proc.stderr
        while not pipe.closed:
            try:
                chunk = os.read(pipe.fileno(), 1 << 16)
            except BlockingIOError:
                return
            if not chunk:
                pipe.close()
                return
            child.stderr_tail = (child.stderr_tail + chunk)[-STDERR_TAIL_BYTES:]
            try:
                os.write(child.log, chunk)
            except OSError:  # a full disk: the run's own writes fail too, and it says so
                pass

    def _wait(self, seconds: float) -> None:
        """Up to ``seconds``, copying the runs' stderr into their logs as it comes."""
        pipes = {c.proc.stderr.fileno(): c for c in self.procs.values() if not c.proc.stderr.closed}
        if not pipes:
            time.sleep(seconds)
            return
        ready, _, _ = select.select(list(pipes), [], [], seconds)
        for fd in ready:
            self._copy_stderr(pipes[fd])

    def _reap(self) -> list[str]:
        finished = []
        for name, child in list(self.procs.items()):
            code = child.proc.poll()
            if code is None:
                continue
            self._copy_stderr(child)
            child.proc.stderr.close()  # a data-loading worker that outlives the run keeps it open
            os.close(child.log)
            st = self.statuses[name]
            st.returncode, st.wall_seconds = code, time.monotonic() - child.started
            if code == 0:
                st.status = "done"
            elif code == 130 or name in self._stopped:
                st.status = "interrupted"
            else:
                st.status = "failed"
            if code != 0:
                reason = f"exit status {code}" if code > 0 else f"killed by signal {-code}"
                said = failure_line(child.stderr_tail)
                st.error = f"{reason}: {said}" if said else reason
            if child.gpu is not None:
                self.free_gpus.append(child.gpu)
            del self.procs[name]
            finished.append(name)
        return finished

    def _say(self, finished: list[str]) -> None:
        for name in finished:
            st = self.statuses[name]
            print(f"{name}: {st.status}" + (f" ({st.error})" if st.error else ""), flush=True)

    def run(self) -> list[RunStatus]:
        queue = list(self.jobs)
        try:
            while queue or self.procs:
                while queue and (not self.gpus or self.free_gpus):
                    self._start(queue.pop(0))
                if finished := self._reap():
                    self._say(finished)
                    self.summarise()
                self._wait(POLL_SECONDS)
        except BaseException:  # Ctrl-C, SIGTERM, SIGHUP, or a bug here: no run is left behind
            self.stop_all()
            raise
        return list(self.statuses.values())

    def run_to_end(
        self, prog: str, stopped_hint: str, before_start: Callable[[], None] | None = None
    ) -> int:
        """Run every job, print the summary; exit status 0, 1 if a run failed or the last
        summary could not be written, 2 if another launcher holds ``out`` (both would rewrite
        its summary) or a run's folder or log is unusable, 130 on a stop. ``before_start``
        runs once ``out`` is held, before any run starts."""
        if odd := [why for n in self.jobs if (why := unusable_run_path(self.out, n))]:
            print(one_line(f"{prog}: error: {odd[0]}"), file=sys.stderr)
            return 2
        try:
            with writing_to(self.out):
                if before_start is not None:
                    before_start()
                return self._run_to_end(stopped_hint)
        except RunFolderBusy as e:
            print(one_line(f"{prog}: error: {e}"), file=sys.stderr)
            return 2
        except OSError as e:  # a run's log could not be opened; the runs were stopped
            line = failed_io(e)
            print(
                f"{prog}: error: {line}; {stopped_hint.removeprefix(f'{prog}: ')}", file=sys.stderr
            )
            return 1

    def _run_to_end(self, stopped_hint: str) -> int:
        where = (
            f"{self.gpus} GPU(s), one per run"
            if self.gpus
            else f"CPU, {self.threads} thread(s) per run"
        )
        if self.jobs:
            print(
                f"training {', '.join(self.jobs)} on {where}; logs in {self.out}/NAME/{LOG}",
                flush=True,
            )
        previous = stop_on_signals(hangup=True)
        try:
            self.run()
        except KeyboardInterrupt:
            print(stopped_hint, file=sys.stderr)
            return 130
        finally:
            restore_signals(previous)
        rows = self.summarise()
        if rows is None:
            return 1
        print((self.out / SUMMARY_MD).read_text())
        return 1 if any(r["status"] == "failed" for r in rows) else 0

    def stop_all(self) -> None:
        """SIGINT to every run (each saves nothing half-done: last.pt stays whole), then wait;
        a second stop, or the grace period's end, kills those still running. The summary is
        written before anything is said: after SIGHUP the terminal may refuse the lines."""
        with stops_noted() as noted:
            for name, child in self.procs.items():
                if child.proc.poll() is None:
                    _signal_run(child, signal.SIGINT)
                    self._stopped.add(name)
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            while (
                not noted
                and time.monotonic() < deadline
                and any(c.proc.poll() is None for c in self.procs.values())
            ):
                self._wait(0.1)
            killed = [n for n, c in self.procs.items() if c.proc.poll() is None]
            for name in killed:
                _signal_run(self.procs[name], signal.SIGKILL)
                self.procs[name].proc.wait()
            finished = self._reap()
            for st in self.statuses.values():
                if st.status == "queued":
                    st.status = "interrupted"
            self.summarise()
            if killed:
                why = "a second stop" if noted else f"{STOP_GRACE_SECONDS:.0f} s"
                print(
                    f"killed {', '.join(killed)}, still running after {why} (a run's last.pt, "
                    "written whole, holds its last finished epoch)",
                    file=sys.stderr,
                )
            self._say(finished)

    def summarise(self) -> list[dict] | None:
        """Rewrite the comparison; None when it cannot be written (a full disk, or a bug in the
        report), said once per reason: the runs go on, each keeps its own folder. Only a stop
        (Ctrl-C, SIGTERM, SIGHUP) ends them."""
        try:
            return self._write_summary(self.out, list(self.statuses.values()))
        except Exception as e:
            if caused_by_interrupt(e):  # a library's own error around a Ctrl-C
                raise KeyboardInterrupt from e
            line = failed_io(e) if isinstance(e, OSError) else one_line(f"{type(e).__name__}: {e}")
            if line != self._summary_error:
                print(f"cannot write the summary in {self.out}: {line}", file=sys.stderr)
                self._summary_error = line
            return None


def _signal_run(child: Child, signum: int) -> None:
    """``signum`` to a run's process group (its data-loading workers too)."""
    try:
        os.killpg(child.proc.pid, signum)
    except ProcessLookupError:  # it and its workers have all ended
        pass
