"""What every command line here shares: bad input is one line on stderr and exit 2, Ctrl-C is
one line and exit 130, a closed output pipe (``| head``) is a quiet exit 1, and the argument
types that make these hold."""

from __future__ import annotations

import argparse
import atexit
import functools
import importlib
import math
import os
import re
import reprlib
import select
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

# C0 and C1 controls and the Unicode line and paragraph separators: each ends a line for
# someone (str.splitlines breaks at \x85 and \u2028 too).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_WORKERS = 1024  # process counts: thousands only thrash (and past 2^31 loky raised)
MAX_THREADS = 1024  # torch threads: at 5,000 a run spun for minutes past SIGTERM, 100,000 crashed
# every trainer's epochs: 1e30 trained for ever, and its lr schedule and the records of an
# outside reader (a JSON number past 2^53) lost their precision
MAX_EPOCHS = 100_000


# What torch's DataLoader makes of an error raised in a worker: the same type, holding the
# worker's whole traceback; the last unindented line of it is the error itself.
WORKER_TRACEBACK = re.compile(
    r"Caught \w+ in DataLoader worker process \d+\.\nOriginal Traceback[^\n]*\n"
    r"(?:.*\n)*(?:[A-Za-z_][\w.]*: )?(?P<message>[^\s\n][^\n]*)\n"
)

# Python's refusal of a number too long to convert: its advice, sys.set_int_max_str_digits(),
# is a call that the user of a command cannot make.
INT_DIGITS_LIMIT = re.compile(
    r"Exceeds the limit \((\d+) digits\) for integer string conversion[^;\n]*"
    r"; use sys\.set_int_max_str_digits\(\) to increase the limit"
)

# A word an argparse error quotes is cut to its ends past this: a 5,000-digit --epochs or
# --device value was quoted whole, a 5 KB error line.
LONG_WORD = re.compile(r"\S{200,}")

_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 2, 16, 60, 60


def short_repr(value: object) -> str:
    """A value as an error line quotes it: a few items, two levels deep, a long number's first
    and last digits (a YAML alias bomb's million-item list made a 5 MB line, a 4,000-digit
    number read from a file filled the screen)."""
    return _SHORT.repr(value)


def short_path(path: object, limit: int = 240) -> str:
    """A path as an error line names it: whole up to ``limit`` characters, else its start and
    its end (the file's name) around ``...``: a pysaliency file may list one of 4 KB."""
    text = str(path)
    if len(text) <= limit:
        return text
    half = (limit - 3) // 2
    return f"{text[:half]}...{text[-half:]}"


def one_line(text: object) -> str:
    """``text`` with control characters escaped (a newline becomes ``\\n``): an error that
    quotes a hostile value stays one line. An error a DataLoader worker raised keeps only
    its own message, not the worker's traceback; Python's refusal of a too long number says
    what it read, not what a programmer would call."""
    return CONTROL.sub(lambda m: repr(m.group())[1:-1], _own_message(text))


def first_line(error: object) -> str:
    """The first line of an error's own message, for errors whose later lines are detail
    (pydantic's field list)."""
    return one_line(_own_message(error).split("\n", 1)[0])


def _own_message(text: object) -> str:
    own = WORKER_TRACEBACK.sub(lambda m: m.group("message"), str(text))
    return INT_DIGITS_LIMIT.sub(lambda m: f"a number of more than {int(m[1]):,} digits", own)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr and exit 2.

    An argument holding a control character is refused: a NUL made every path call raise,
    and a newline in a path split the error lines that quote it.
    """

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        args = sys.argv[1:] if args is None else list(args)
        for arg in args:
            if isinstance(arg, str) and CONTROL.search(arg):
                self.error(f"argument {arg!r} holds a control character")
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> None:  # type: ignore[override]
        line = LONG_WORD.sub(lambda m: f"{m[0][:60]}...{m[0][-60:]}", one_line(message))
        print(f"{self.prog}: error: {line} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def describe_validation_error(e: ValidationError) -> str:
    """All pydantic errors on one line, each as ``field.path: message`` (a check of the
    whole config: the message alone); a key with a line break, named as written, split it."""
    parts = []
    for err in e.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {error_message(err)}" if where else error_message(err))
    return one_line("; ".join(parts))


def error_message(err: dict) -> str:
    """One pydantic error's message, without the "Value error, " pydantic puts before the
    words of a validator of ours."""
    return err["msg"].removeprefix("Value error, ")


# torch's error when a DataLoader worker died of the stop signal the whole process group got
# (Ctrl-C, Slurm's scancel, kill -TERM -PGID), sometimes before the main process got its own.
_WORKER_STOPPED = re.compile(
    r"DataLoader worker \(pid[^)]*\) is killed by signal: (Interrupt|Terminated)"
)


def caused_by_interrupt(exc: BaseException | None) -> bool:
    """Whether Ctrl-C or SIGTERM is behind ``exc``: a library may catch the KeyboardInterrupt
    and raise its own error from it (pydantic does, inside a serializer), and a DataLoader
    reports its workers' deaths by the same signal as an error of its own."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt) or (
            isinstance(exc, RuntimeError) and _WORKER_STOPPED.search(str(exc))
        ):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def exit_on_interrupt(command: Callable[[], int], message: str | Callable[[], str]) -> int:
    """Run ``command``; Ctrl-C or SIGTERM anywhere inside it is ``interrupted: message`` and
    exit 130 (a callable ``message`` says it as things stand at the stop). SIGTERM (``kill``,
    ``timeout``) would otherwise end the process on the spot and leave its worker processes
    running without it."""
    previous = stop_on_signals()
    try:
        return command()
    except BaseException as e:
        if not caused_by_interrupt(e):
            raise
        print(f"interrupted: {message() if callable(message) else message}", file=sys.stderr)
        return 130
    finally:
        restore_signals(previous)


def entry_point(main: Callable[[], int]) -> Callable[[], None]:
    """What ``python -m`` and the console script run: ``main``, then the process's exit, a
    stop until its very end being one line and exit 130.

    ``exit_on_interrupt`` gives the signals back when the command returns, and the exit
    after it had no handler: a Ctrl-C in an exit function (joblib's temporary folders,
    multiprocessing's children, thread joins) was a traceback, in torch's and numba's
    teardown (0.3-0.6 s) a silent exit, a SIGTERM a silent 143. So the exit functions run
    under a handler that says the command had ended, and the teardown, which writes
    nothing, is skipped (CPython runs the exit functions only at its own exit otherwise).
    """
    return functools.partial(_run_to_exit, main)


def _run_to_exit(main: Callable[[], int]) -> None:
    try:
        code = main()
    except SystemExit as e:  # --help, a usage error: a number here, never a message
        code = e.code or 0

    def stopped(signum: int, frame: object) -> None:
        os.write(2, f"interrupted: the command had ended (exit {code}) before the stop\n".encode())
        os._exit(130)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stopped)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):  # closed at the start (None), or
            pass  # failing, which the command reported (quiet_on_closed_output)
    atexit._run_exitfuncs()
    os._exit(code)


def out_of_memory(error: BaseException) -> str | None:
    """``error`` as one line when it is a failed allocation (``MemoryError``, torch's CPU
    allocator, CUDA's ``OutOfMemoryError``), else None: a batch too large for the machine is
    a setting to lower, not a crash to debug."""
    text = str(error)
    if not isinstance(error, MemoryError) and not (
        isinstance(error, RuntimeError)
        and ("out of memory" in text.lower() or "can't allocate memory" in text)
    ):
        return None
    asked = re.search(r"(?i)tried to allocate (\d+ bytes|[\d.]+ ?[KMGT]?i?B)", text)
    if asked and asked.group(1).endswith(" bytes"):
        size = f"{int(asked.group(1).split()[0]) / 2**30:.3g} GiB"
    else:
        size = asked.group(1) if asked else None
    detail = f" (a tensor of {size})" if size else ""
    return f"out of memory{detail}; lower the batch size or the data workers"


def failed_io(error: OSError) -> str:
    """``error`` as one line naming its file (``No space left on device: runs/i3d/last.pt``).
    A BrokenPipeError is raised again: ``quiet_on_closed_output`` deals with it."""
    if isinstance(error, BrokenPipeError):
        raise error
    where = f": {error.filename}" if error.filename else ""
    return one_line(f"{error.strerror or error}{where}")


def _reader_gone(stream) -> bool:
    """Whether ``stream`` is a pipe whose reader has closed it (Linux and macOS flag such a
    pipe's write end with POLLERR); False for a file, a terminal or a stream without a
    descriptor."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


class OutputFailed(Exception):
    """Standard output refused a write (a full disk behind ``> report.txt``, ``/dev/full``)."""


class _CheckedOutput:
    """``sys.stdout`` for the length of a command: a failed write is ``OutputFailed``, so no
    handler of the command's own file errors takes it for one of them (a BrokenPipeError
    stays itself); a character the output's encoding lacks (``PYTHONIOENCODING=ascii``, a C
    locale) is written as a backslash escape, as stderr does, not a UnicodeEncodeError."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._checked(self._stream.write, text)
        except UnicodeEncodeError:
            encoding = getattr(self._stream, "encoding", None) or "ascii"
            escaped = text.encode(encoding, "backslashreplace").decode(encoding)
            return self._checked(self._stream.write, escaped)

    def flush(self) -> None:
        self._checked(self._stream.flush)

    @staticmethod
    def _checked(call, *args):
        try:
            return call(*args)
        except BrokenPipeError:
            raise
        except OSError as e:
            raise OutputFailed(e.strerror or str(e)) from None

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def quiet_on_closed_output(main: Callable[..., int]) -> Callable[..., int]:
    """``main`` whose output pipe closed early (``prog | head -1``) exits 1 without a
    traceback, as Python's documentation advises (the "Note on SIGPIPE" in ``signal``); an
    output that refuses a write is one line and exit 1. A BrokenPipeError from anything
    else (a socket, a worker's pipe) still raises."""

    @functools.wraps(main)
    def run(*args, **kwargs) -> int:
        stdout = sys.stdout
        if stdout is not None:  # None: started with stdout closed (``>&-``), print drops it
            sys.stdout = _CheckedOutput(stdout)
        try:
            code = main(*args, **kwargs)
            if sys.stdout is not None:  # what is still buffered fails here, not at exit
                sys.stdout.flush()
            return code
        except OutputFailed as e:
            print(f"error: cannot write the output: {one_line(e)}", file=sys.stderr)
            _discard_output([stdout])
            return 1
        except BrokenPipeError:
            gone = [s for s in (stdout, sys.stderr) if _reader_gone(s)]
            if not gone:
                raise
            _discard_output(gone)
            return 1
        finally:
            sys.stdout = stdout

    return run


def _discard_output(streams: list) -> None:
    """Point ``streams`` at /dev/null, so the interpreter's last flush of what they still
    buffer does not fail again (a second message, exit status 120)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in streams:
        try:
            os.dup2(devnull, stream.fileno())
        except (AttributeError, OSError, ValueError):  # no descriptor (a test's capture)
            pass
    os.close(devnull)


def number_arg(kind: type, minimum: float, strict: bool) -> Callable[[str], float]:
    """argparse type of a finite ``kind`` at least (``strict``: above) ``minimum``."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(
                f"must be {'>' if strict else '>='} {minimum}, got {text}"
            )
        return value

    return parse


def whole_number(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """argparse type of an integer in ``minimum..maximum`` that says which rule a bad value
    breaks."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if maximum is not None and not minimum <= value <= maximum:  # one wording, either side
            raise argparse.ArgumentTypeError(f"must be {minimum}..{maximum}, got {value}")
        if value < minimum:
            rule = {0: "zero or positive", 1: "positive"}.get(minimum, f"at least {minimum}")
            raise argparse.ArgumentTypeError(f"must be {rule}, got {value}")
        return value

    return parse


def path_arg(text: str) -> Path:
    """argparse type of a path: empty (which would mean the current folder) or holding a NUL
    byte (which no system call takes) is a usage error."""
    if not text or "\x00" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a usable path")
    return Path(text)


def folder_arg(text: str) -> Path:
    """argparse type of an output folder: a usable path that is not an existing file."""
    path = path_arg(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} exists and is not a folder")
    return path


def path_text(text: str) -> str:
    return str(path_arg(text))


def default_workers() -> int:
    """The cores this process may use (its affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def stop_on_signals(hangup: bool = False) -> dict:
    """Ctrl-C and SIGTERM (Slurm preemption, a launcher) raise KeyboardInterrupt; with
    ``hangup`` SIGHUP too (the terminal or SSH session closed), for a launcher whose runs
    would otherwise train on without it, unless SIGHUP is ignored (``nohup``).

    Python leaves SIGINT ignored when it starts ignored (a background job of a
    non-interactive shell, and every child such a process spawns), so set it.
    """

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    hangup = hangup and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN
    stops = (signal.SIGTERM, signal.SIGHUP) if hangup else (signal.SIGTERM,)
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, *stops)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in stops:
        signal.signal(signum, interrupt)
    return previous


def leave_stops_to_main_process(worker_id: int = 0) -> None:
    """A DataLoader's ``worker_init_fn``: a stop sent to the whole process group (Ctrl-C,
    Slurm's scancel, ``kill -TERM -PGID``) is left to the main process, which shuts its
    workers down. A worker the signal killed made torch raise "DataLoader worker is killed
    by signal" in the main process mid-step, and again from the loader's destructor; so
    SIGINT is ignored, and SIGTERM ends the worker with exit status 0, which torch's watch
    on its workers does not report. SIGTERM still ends it: torch's last resort for a worker
    that did not stop when asked, which an ignored SIGTERM turned into a hang at exit. A
    worker whose main process dies still leaves (torch's watchdog)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _leave_quietly)


def _leave_quietly(signum: int, frame: object) -> None:
    os._exit(0)


# The handlers each ``interrupts_deferred`` block replaced, outermost first.
_deferred: list[dict] = []


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then deliver them to their own handlers.

    A ``KeyboardInterrupt`` raised inside ``torch.save`` makes its zip writer's clean-up fail
    with "RuntimeError: unexpected pos" (exit 1, not 130); raised inside a fork, in one of
    the interpreter's at-fork hooks (logging's lock), it is printed as "Exception ignored"
    and lost, and the run went on. A stop noted in a block that raises gives way to the
    error, which ends the command. Only the main thread can handle signals; elsewhere this
    does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:  # a stop between two of these lines finds the handlers put back
        _deferred.append(previous)
        for signum, handler in previous.items():
            if handler is not signal.SIG_IGN:
                signal.signal(signum, lambda s, frame: caught.append(s))
        yield
    finally:
        _deferred[:] = [d for d in _deferred if d is not previous]
        restore_signals(previous)
    for signum in dict.fromkeys(caught):
        signal.raise_signal(signum)


def _forked_inside_a_deferral() -> None:
    """A process forked inside ``interrupts_deferred`` (a DataLoader worker) leaves stops to
    its parent from its first instruction, as its ``worker_init_fn`` would later: given the
    parent's raising handlers, a Ctrl-C to the process group in between raised inside its
    at-fork hooks or its start (tracebacks, and ``train.jepa`` once ended with exit 1)."""
    if _deferred:
        _deferred.clear()
        leave_stops_to_main_process()


os.register_at_fork(after_in_child=_forked_inside_a_deferral)


def load_modules(*names: str) -> None:
    """Import ``names`` (torch and what builds on it: seconds on a busy machine) with a stop
    noted, not raised: a KeyboardInterrupt inside an import can leave a library half loaded
    (numpy then refuses to load again, a traceback) or be swallowed by it (the run went on).
    A stop noted is one line and exit 130 once they are in; nothing has been written yet."""
    noted = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for signum in previous:
        signal.signal(signum, lambda got, frame: noted.append(got))
    try:
        for name in names:
            importlib.import_module(name)
    finally:
        restore_signals(previous)
    if noted:
        print("interrupted: stopped while loading; nothing was written", file=sys.stderr)
        raise SystemExit(130)


def restore_signals(previous: dict) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
