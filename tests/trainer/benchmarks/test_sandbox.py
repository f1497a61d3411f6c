"""The sandbox: hostile programs (hangs, fork bombs, memory and disk bombs, file damage, the
network, early exits) fail their own sample only, and the host is left as it was."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from trainer.benchmarks import sandbox
from trainer.benchmarks.sandbox import Isolation, isolation, run_many, run_python


def live_uid_processes(uid: int) -> list[int]:
    """Pids of processes running as `uid` that are not zombies (a killed process stays a
    zombie until this host's init reaps it, which may take seconds; it runs nothing)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "status")) as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:
            continue
        if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith("Z"):
            found.append(int(entry.name))
    return found


def live_sandbox_processes(wait_s: float = 3.0) -> list[int]:
    """Live processes of the sandbox uids, after up to `wait_s` seconds for SIGKILLed ones to
    finish exiting (delivery is immediate, the exit itself needs the process scheduled)."""
    if isolation().user == "caller":
        return []
    base = sandbox.SANDBOX_UID_BASE
    deadline = time.monotonic() + wait_s
    while True:
        uids = range(base, base + sandbox.SANDBOX_UID_SLOTS)
        found = [p for u in uids for p in live_uid_processes(u)]
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_isolation_is_probed_and_described() -> None:
    iso = isolation()
    assert iso.describe()
    if os.geteuid() == 0:  # this project's machines: the strong set-up must be in effect
        assert iso.network == "namespace"
        assert iso.user != "caller"


def test_plain_program_passes_and_prints_nothing_of_ours() -> None:
    result = run_python("x = sum(range(10))\nassert x == 45\n")
    assert result.passed and result.status == "passed"
    assert result.wall_s < 5


def test_failed_assert_is_failed() -> None:
    result = run_python("assert 1 == 2, 'wrong'")
    assert result.status == "failed"
    assert "AssertionError: wrong" in result.detail


@pytest.mark.parametrize("exit_code", ["import sys; sys.exit(0)", "import os; os._exit(0)"])
def test_exit_before_the_end_is_not_passed(exit_code: str) -> None:
    # The marker line is printed only when the program runs to its end.
    result = run_python(f"{exit_code}\nassert False\n")
    assert result.status == "failed"
    assert not result.passed


def test_infinite_loop_times_out() -> None:
    start = time.monotonic()
    result = run_python("while True:\n    pass\n", timeout_s=1.5)
    assert result.status == "timeout"
    assert time.monotonic() - start < 6


def test_cpu_limit_applies_below_the_wall_clock() -> None:
    result = run_python("while True:\n    pass\n", timeout_s=10, cpu_s=1)
    assert result.status == "timeout"
    assert "CPU" in result.detail
    assert result.wall_s < 5


def test_memory_bombs_fail_with_memory() -> None:
    assert run_python("x = bytearray(10**11)\n").status == "memory"
    growing = "x = []\nwhile True:\n    x.append(bytearray(10**6))\n"
    assert run_python(growing, memory_mb=256, timeout_s=10).status == "memory"


def test_fork_bomb_fails_only_its_sample() -> None:
    bomb = "import os\nwhile True:\n    os.fork()\n"
    results = run_many([bomb, "print('ok')", bomb, "assert 2 + 2 == 4"], workers=2, timeout_s=5)
    assert [r.passed for r in results] == [False, True, False, True]
    assert results[0].status in {"failed", "timeout", "crashed"}
    assert live_sandbox_processes() == []


def test_background_children_are_killed() -> None:
    # The parent finishes (and passes) while a detached child would sleep for 10 minutes.
    program = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(600)\n"
    result = run_python(program)
    assert result.passed
    assert live_sandbox_processes() == []


def test_large_file_is_capped_and_removed() -> None:
    program = "import os, sys\nprint(os.getcwd(), file=sys.stderr)\n"
    program += "with open('big', 'wb') as fh:\n    fh.write(b'x' * (10**9))\n"
    result = run_python(program, memory_mb=2048, file_mb=16)
    assert result.status == "failed"
    assert "File too large" in result.detail
    workdir = Path(result.detail.splitlines()[0])
    assert workdir.name.startswith("mathcorpus-sandbox-")
    assert not workdir.exists()  # the working directory is gone, the capped file with it


def test_damage_stays_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MATHCORPUS_FAKE_SECRET", "hunter2")
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("keep me")
    # Deleting by absolute path is only refused where the code runs as its own uid.
    by_path = isolation().user != "caller"
    program = f"""
import os, shutil
assert "MATHCORPUS_FAKE_SECRET" not in os.environ
assert "hunter2" not in repr(dict(os.environ))
assert os.environ["HOME"] == os.getcwd()
open("junk", "w").write("x")
os.system("rm -rf ~ ./* 2>/dev/null")
if {by_path}:
    try:
        os.remove({str(sentinel)!r})
    except OSError:
        pass
    try:
        shutil.rmtree({str(tmp_path)!r})
    except OSError:
        pass
"""
    result = run_python(program)
    assert result.passed, result.detail
    assert sentinel.read_text() == "keep me"


def test_network_is_unreachable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.5)
        port = server.getsockname()[1]
        program = f"""
import socket
s = socket.create_connection(("127.0.0.1", {port}), timeout=2)
s.sendall(b"leak")
"""
        result = run_python(program)
        assert result.status == "failed"
        with pytest.raises(TimeoutError):
            server.accept()


def test_socket_prelude_refuses_sockets() -> None:
    # The fallback of hosts without network namespaces, exercised here directly.
    fallback = Isolation(network="socket-prelude", user="caller")
    program = "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
    result = sandbox._run(program, fallback, 10.0, 1024, 10, 16, site_packages=False)
    assert result.status == "failed"
    assert "network access is disabled" in result.detail
    ok = sandbox._run("import ssl, socket\nprint(1)", fallback, 10.0, 1024, 10, 16, False)
    assert ok.passed, ok.detail  # modules that subclass socket.socket still import


def test_site_packages_only_when_asked() -> None:
    assert not run_python("import numpy\n").passed
    assert run_python("import numpy\nassert numpy.ones(3).sum() == 3\n", site_packages=True).passed


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError):
        run_python("pass", timeout_s=0)
    with pytest.raises(ValueError):
        run_many(["pass"], workers=0)


def test_two_processes_never_share_a_sandbox_uid(tmp_path) -> None:
    """Two evaluations on one machine: each run's clean-up kills every process of its uid, so
    a uid held by one process is never handed out by another (cross-process slot locks)."""
    import subprocess
    import sys

    script = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parents[3])!r})\n"
        "from trainer.benchmarks.sandbox import run_many\n"
        "progs = ['import time\\ntime.sleep(0.3)\\nprint(sum(range(10)))'] * 12\n"
        "results = run_many(progs, workers=2)\n"
        "print(sum(r.passed for r in results))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0].strip().splitlines()[-1] for p in procs]
    assert outputs == ["12", "12"]
