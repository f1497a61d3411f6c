"""Run untrusted Python (a model's generated code plus a benchmark's tests) in a sandbox.

Why: HumanEval and MBPP are scored by executing what the model wrote. Generated code can loop
forever, exhaust memory, fork without end, fill the disk, delete files or open sockets; any of
that must fail its own sample and nothing else (not the scoring run, not the machine, not the
other engineers' processes on it).

What each `run_python` call gets:

- its own process (the interpreter of `sys.executable`, started with `-I -S`: no environment
  variables, user site or site-packages; `site_packages=True` appends the caller's
  site-packages directories to sys.path, e.g. for numpy, which DeepSeek-Coder's harness lets
  completions import), in a new session so a wall-clock timeout kills the whole process group;
- a throw-away working directory (also HOME and TMPDIR), deleted afterwards;
- a cleared environment (PATH, LANG, HOME, TMPDIR, single-threaded BLAS);
- resource limits set in the child before exec: CPU seconds, address space (memory),
  processes (a fork bomb fails), size of any file written, open files;
- the program read from a pipe (it cannot re-read its own text), followed by a line that prints
  a random marker: success is signalled positively, so `sys.exit(0)` or `os._exit(0)` before
  the tests, or a killed process, never counts as passed.

Isolation depends on what the host allows; `isolation()` probes once (cached) and says which:

- as root with util-linux `unshare` and `setpriv` (this project's machines): a new network
  namespace (only a down loopback: every connect fails, even to 127.0.0.1), and the code runs
  as an unprivileged uid of its own (SANDBOX_UID_BASE + slot, one per concurrent run, so the
  process limit of one sample's fork bomb never starves another sample, and every process left
  behind by a sample is killed with kill(-1) as that uid). That uid cannot delete or write the
  parent's files, nor raise its limits. Where the interpreter lives in a directory the uid
  cannot enter (pyenv under /root, mode 700), it keeps only CAP_DAC_READ_SEARCH (read and
  traverse any path, nothing else; no-new-privs, bounding set dropped) so that it can start;
  it could then read files, but with no network only the stderr tail returns to us;
- otherwise (not root, or the tools are missing): same user as the caller, the process limit
  set to the user's current process count plus headroom, and a prelude that replaces
  `socket.socket` with a class that refuses to be created (best effort: ctypes could bypass
  it); files of the caller outside the working directory are then not protected.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import resource
import secrets
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

Status = Literal["passed", "failed", "timeout", "crashed", "memory"]

# Unprivileged uids/gids the sandboxed code runs as (root host only): one per concurrent run.
# Chosen far above distribution ranges (system < 1000, users 1000-60000); no passwd entry needed.
SANDBOX_UID_BASE = 61_000
SANDBOX_UID_SLOTS = 64
# Characters of stderr kept in SandboxResult.detail (the end of a traceback says why).
DETAIL_CHARS = 2_000
# Bytes of stdout read back to find the success marker at its end.
STDOUT_TAIL_BYTES = 4_096
# Processes the sandboxed uid may have at once (threads count): the interpreter, a shell from
# os.system and a few children; a fork bomb stops here.
MAX_PROCESSES = 32
# Open file descriptors of the sandboxed process.
MAX_OPEN_FILES = 128
# Headroom above the caller's current process count when the code runs as the caller's user.
SAME_USER_PROCESS_HEADROOM = 64
# Seconds the isolation probe may take (one tiny program per candidate set-up).
PROBE_TIMEOUT_S = 20.0
# Seconds between looks for a slot whose uid has no zombie left.
SLOT_RETRY_S = 0.02
CHILD_PATH = "/usr/local/bin:/usr/bin:/bin"

_SOCKET_PRELUDE = """\
import _socket as _sandbox_socket_c, socket as _sandbox_socket
class _SandboxNoNetwork(_sandbox_socket_c.socket):
    def __init__(self, *args, **kwargs):
        raise PermissionError("network access is disabled in the sandbox")
_sandbox_socket_c.socket = _sandbox_socket.socket = _sandbox_socket.SocketType = _SandboxNoNetwork
del _sandbox_socket_c, _sandbox_socket, _SandboxNoNetwork
"""


@dataclass(frozen=True)
class SandboxResult:
    """Outcome of one program run in the sandbox."""

    passed: bool
    """True only when the process exited 0 after printing the end-of-program marker."""
    status: Status
    """"passed"; "failed" (an exception, a non-zero exit, or an exit before the end);
    "timeout" (wall-clock or CPU limit); "crashed" (killed by a signal other than the CPU
    limit's); "memory" (MemoryError under the address-space limit)."""
    detail: str
    """The last DETAIL_CHARS characters of stderr, or a sentence saying what happened."""
    wall_s: float
    """Seconds from start to the end of the process (and of its cleanup)."""


@dataclass(frozen=True)
class Isolation:
    """How programs are isolated on this host (probed once, see `isolation()`)."""

    network: Literal["namespace", "socket-prelude"]
    """"namespace": a new, empty network namespace; "socket-prelude": sockets refused in-process."""
    user: Literal["sandbox-uid", "sandbox-uid+dac_read_search", "caller"]
    """Who the code runs as: its own unprivileged uid (optionally keeping only
    CAP_DAC_READ_SEARCH so it can reach the interpreter), or the caller's own user."""

    def describe(self) -> str:
        net = {
            "namespace": "own network namespace (no interfaces up)",
            "socket-prelude": "socket.socket replaced by a refusing class (best effort)",
        }[self.network]
        who = {
            "sandbox-uid": "an unprivileged uid per concurrent run",
            "sandbox-uid+dac_read_search": "an unprivileged uid per concurrent run, keeping "
            "only CAP_DAC_READ_SEARCH to reach the interpreter",
            "caller": "the caller's user (process limit relative to its current count)",
        }[self.user]
        return f"network: {net}; user: {who}"


# --- uid slots --------------------------------------------------------------------------------

_slots_lock = threading.Condition()
_free_slots: list[int] = list(range(SANDBOX_UID_SLOTS))
# A slot is also locked across processes (an flock on a file per slot, released when the file
# is closed or the process dies): two evaluations on one machine must never share a uid, since
# the clean-up after a run kills every process of its uid.
SLOT_LOCK_DIR = Path(tempfile.gettempdir()) / "mathcorpus-sandbox-slots"
_slot_locks: dict[int, int] = {}


def _lock_slot(slot: int) -> bool:
    """Take this slot's cross-process lock (False: another process holds it)."""
    SLOT_LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(SLOT_LOCK_DIR / f"slot-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _slot_locks[slot] = fd
    return True


def _unlock_slot(slot: int) -> None:
    fd = _slot_locks.pop(slot, None)
    if fd is not None:
        os.close(fd)  # closing the file releases the flock


def _uid_has_processes(uid: int) -> bool:
    """Whether any process (zombies included) runs as `uid`: /proc/<pid> belongs to its euid."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    return True
            except OSError:
                continue
    return False


def _take_slot() -> int:
    """A free slot whose uid has no process left (killed processes stay zombies until this
    host's init reaps them, and zombies count against RLIMIT_NPROC of the next run)."""
    while True:
        with _slots_lock:
            while not _free_slots:
                _slots_lock.wait()
            for slot in _free_slots:
                if not _lock_slot(slot):
                    continue  # another process runs this uid
                if not _uid_has_processes(SANDBOX_UID_BASE + slot):
                    _free_slots.remove(slot)
                    return slot
                _unlock_slot(slot)
        time.sleep(SLOT_RETRY_S)


def _give_slot(slot: int) -> None:
    with _slots_lock:
        _unlock_slot(slot)
        _free_slots.append(slot)
        _free_slots.sort()
        _slots_lock.notify()


# --- command lines ---------------------------------------------------------------------------


def _interpreter_args() -> list[str]:
    # -I: isolated (no PYTHON* variables, no user site, script dir not on sys.path); -S: no
    # site module (no site-packages, no .pth files). "-" reads the program from stdin (a pipe).
    return [sys.executable, "-I", "-S", "-"]


def _site_prelude() -> str:
    """Puts the caller's site-packages directories on sys.path without running `site` (whose
    .pth processing, editable-install finders included, doubles start-up: ~90 ms vs ~45 ms)."""
    return f"import sys as _sys\n_sys.path.extend({site.getsitepackages()!r})\ndel _sys\n"


def _wrapper_args(iso: Isolation, uid: int) -> list[str]:
    """The commands that exec each other before the interpreter starts."""
    args: list[str] = []
    if iso.network == "namespace":
        args += ["unshare", "--net", "--"]
    if iso.user != "caller":
        caps = "+dac_read_search" if iso.user == "sandbox-uid+dac_read_search" else ""
        args += [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--no-new-privs",
            f"--inh-caps=-all{',' + caps if caps else ''}",
            f"--bounding-set=-all{',' + caps if caps else ''}",
        ]
        if caps:
            args.append(f"--ambient-caps={caps}")
        args.append("--")
    return args


def _user_process_count() -> int:
    """Processes (tasks with threads counted once per thread group) of the caller's real uid."""
    uid = os.getuid()
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(entry.path).st_uid == uid:
                count += len(os.listdir(os.path.join(entry.path, "task")))
        except OSError:
            continue
    return count


def _limits(
    cpu_s: int, memory_mb: int, file_mb: int, nproc: int
) -> list[tuple[int, tuple[int, int]]]:
    mb = 1024 * 1024
    return [
        # Soft limit: SIGXCPU; hard limit one second later: SIGKILL.
        (resource.RLIMIT_CPU, (cpu_s, cpu_s + 1)),
        (resource.RLIMIT_AS, (memory_mb * mb, memory_mb * mb)),
        (resource.RLIMIT_NPROC, (nproc, nproc)),
        (resource.RLIMIT_FSIZE, (file_mb * mb, file_mb * mb)),
        (resource.RLIMIT_NOFILE, (MAX_OPEN_FILES, MAX_OPEN_FILES)),
        (resource.RLIMIT_CORE, (0, 0)),
    ]


def _preexec(limits: list[tuple[int, tuple[int, int]]]) -> Callable[[], None]:
    """setrlimit in the forked child before exec. Only async-signal-tolerable work here: the
    parent may have other threads (run_many), so no imports and no allocation-heavy code."""

    def apply() -> None:
        for which, value in limits:
            resource.setrlimit(which, value)

    return apply


def _kill_uid(uid: int) -> None:
    """SIGKILL every process of `uid`: kill(-1) as that uid (atomic against its forks)."""
    subprocess.run(
        [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--",
            "kill",
            "-9",
            "-1",  # every process the caller may signal, itself excepted: all of `uid`'s
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )


def _killpg(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


# --- the run ---------------------------------------------------------------------------------


def _run(
    program: str,
    iso: Isolation,
    timeout_s: float,
    memory_mb: int,
    cpu_s: int,
    file_mb: int,
    site_packages: bool,
) -> SandboxResult:
    marker = f"sandbox-end-{secrets.token_hex(16)}"
    source = _SOCKET_PRELUDE if iso.network == "socket-prelude" else ""
    source += (_site_prelude() if site_packages else "") + program
    source += f"\n\nprint({marker!r}, flush=True)\n"
    own_uid = iso.user != "caller"
    slot = _take_slot() if own_uid else -1
    uid = SANDBOX_UID_BASE + slot
    nproc = MAX_PROCESSES if own_uid else _user_process_count() + SAME_USER_PROCESS_HEADROOM
    workdir = tempfile.mkdtemp(prefix="mathcorpus-sandbox-")
    start = time.monotonic()
    try:
        if own_uid:
            os.chown(workdir, uid, uid)
        env = {
            "PATH": CHILD_PATH,
            "LANG": "C.UTF-8",
            "HOME": workdir,
            "TMPDIR": workdir,
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        # Unnamed files (no path the child could open): stdout and stderr may be large, a pipe
        # read into memory is not bounded; RLIMIT_FSIZE bounds these too.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            timed_out = False
            try:
                proc = subprocess.Popen(
                    [*_wrapper_args(iso, uid), *_interpreter_args()],
                    stdin=subprocess.PIPE,
                    stdout=out,
                    stderr=err,
                    cwd=workdir,
                    env=env,
                    start_new_session=True,
                    preexec_fn=_preexec(_limits(cpu_s, memory_mb, file_mb, nproc)),
                    close_fds=True,
                )
            except OSError as exc:  # e.g. EAGAIN from fork under load
                return SandboxResult(False, "crashed", f"could not start: {exc}", 0.0)
            try:
                proc.communicate(source.encode("utf-8", errors="surrogatepass"), timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                _killpg(proc.pid)
                proc.wait()
            finally:
                _killpg(proc.pid)  # children left in the group (daemons, a fork bomb)
                if own_uid:
                    _kill_uid(uid)  # and those that left the group
            wall_s = time.monotonic() - start
            rc = proc.returncode
            out.seek(max(0, out.seek(0, os.SEEK_END) - STDOUT_TAIL_BYTES))
            stdout_tail = out.read().decode("utf-8", errors="replace")
            err.seek(max(0, err.seek(0, os.SEEK_END) - 4 * DETAIL_CHARS))
            stderr_tail = err.read().decode("utf-8", errors="replace")[-DETAIL_CHARS:]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if own_uid:
            _give_slot(slot)
    return _classify(rc, timed_out, stdout_tail.endswith(marker + "\n"), stderr_tail, wall_s)


def _classify(
    rc: int, timed_out: bool, marker_seen: bool, stderr_tail: str, wall_s: float
) -> SandboxResult:
    if timed_out:
        return SandboxResult(False, "timeout", f"wall-clock timeout\n{stderr_tail}", wall_s)
    if rc < 0:
        sig = -rc
        name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
        if sig == signal.SIGXCPU:  # the CPU soft limit (the hard one, 1 s later, is SIGKILL)
            return SandboxResult(False, "timeout", f"CPU limit ({name})\n{stderr_tail}", wall_s)
        return SandboxResult(False, "crashed", f"killed by {name}\n{stderr_tail}", wall_s)
    if rc != 0:
        status: Status = "memory" if "MemoryError" in stderr_tail else "failed"
        return SandboxResult(False, status, stderr_tail, wall_s)
    if not marker_seen:
        return SandboxResult(
            False, "failed", f"exited 0 before the end of the program\n{stderr_tail}", wall_s
        )
    return SandboxResult(True, "passed", stderr_tail, wall_s)


def _candidates() -> list[Isolation]:
    """Set-ups to try, strongest first."""
    found: list[Isolation] = []
    if os.geteuid() == 0 and shutil.which("setpriv") and shutil.which("kill"):
        for network in ("namespace", "socket-prelude"):
            if network == "namespace" and not shutil.which("unshare"):
                continue
            for user in ("sandbox-uid", "sandbox-uid+dac_read_search"):
                found.append(Isolation(network, user))  # type: ignore[arg-type]
    found.append(Isolation("socket-prelude", "caller"))
    return found


@lru_cache(maxsize=1)
def isolation() -> Isolation:
    """The strongest set-up that runs a program on this host (probed once, then cached)."""
    # The same interpreter must start, with its own standard library: a uid that cannot reach
    # pyenv's lib/ still starts the binary, but against the system's libpython (seen here:
    # 3.11.2 instead of 3.11.7), silently.
    expect = (
        f"import sys\nassert (sys.version, sys.base_prefix) == {(sys.version, sys.base_prefix)!r}"
    )
    for candidate in _candidates():
        result = _run(
            expect,
            candidate,
            timeout_s=PROBE_TIMEOUT_S,
            memory_mb=1024,
            cpu_s=int(PROBE_TIMEOUT_S),
            file_mb=1,
            site_packages=False,
        )
        if result.passed:
            return candidate
    raise RuntimeError("the sandbox cannot run a trivial program on this host")


def run_python(
    program: str,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
    cpu_s: int | None = None,
    file_mb: int = 64,
    site_packages: bool = False,
) -> SandboxResult:
    """Run `program` (Python source) in the sandbox; never raises for what the program does.

    timeout_s: wall-clock seconds before the process group is killed.
    memory_mb: address-space limit in MiB (RLIMIT_AS; the interpreter itself takes ~30 MiB).
    cpu_s: CPU seconds (RLIMIT_CPU); default ceil(timeout_s).
    file_mb: largest file the program may write, MiB (RLIMIT_FSIZE; stdout and stderr too).
    site_packages: let the program import the interpreter's site-packages (e.g. numpy).
    """
    if timeout_s <= 0 or memory_mb <= 0 or file_mb <= 0:
        raise ValueError("timeout_s, memory_mb and file_mb must be positive")
    return _run(
        program,
        isolation(),
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        cpu_s=cpu_s if cpu_s is not None else max(1, math.ceil(timeout_s)),
        file_mb=file_mb,
        site_packages=site_packages,
    )


def run_many(
    programs: Sequence[str],
    workers: int = 2,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
    cpu_s: int | None = None,
    file_mb: int = 64,
    site_packages: bool = False,
) -> list[SandboxResult]:
    """`run_python` over `programs`, `workers` at a time (threads, each waiting on its own
    process); results in the order of `programs`."""
    if workers < 1:
        raise ValueError("workers must be >= 1")
    isolation()  # probe once before the threads start

    def one(program: str) -> SandboxResult:
        return run_python(program, timeout_s, memory_mb, cpu_s, file_mb, site_packages)

    with ThreadPoolExecutor(max_workers=min(workers, SANDBOX_UID_SLOTS)) as pool:
        return list(pool.map(one, programs))
