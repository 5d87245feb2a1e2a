"""Runs a command and writes its wall time, CPU time and peak memory as JSON (used by run.py).

    python peak.py RESULT.json COMMAND...

Why a launcher: Linux keeps a process's peak resident memory across ``exec``, so a command
started by a large process (the benchmark, after its in-process figures) would report the
benchmark's size as its own peak. Started from this small process instead, the command's peak
(read with ``os.wait4``: the largest of its own and its workers', never a sum) is at least this
launcher's size (about 10 MiB), and otherwise the command's own.
"""
import json
import os
import sys
import time


def main() -> int:
    out, cmd = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    pid = os.posix_spawnp(cmd[0], cmd, os.environ)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    with open(out, "w", encoding="utf-8") as fh:
        json.dump({"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime, "peak_kib": usage.ru_maxrss,
                   "code": os.waitstatus_to_exitcode(status)}, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
