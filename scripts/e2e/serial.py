#!/usr/bin/env python3
"""Host side of the e2e serial protocol (see docs/e2e.md).

  serial.py stamp LOG T0     copy stdin to LOG, each line prefixed with seconds since T0
                             (a time.time() value); echo the progress lines to stderr
  serial.py extract RUN      only write RUN/files/* (for host checks that read them)
  serial.py report RUN       parse RUN/serial.log: write RUN/files/*, RUN/results.txt and
                             RUN/timings.txt, add RUN/host-results.txt ("pass|fail NAME
                             DETAIL" lines), print a summary; exit 1 on any failed check
"""
import base64
import hashlib
import os
import re
import sys
import time

PROGRESS = re.compile(rb"E2E-(RESULT|MARK|DONE)|Xen version|about to get started|Kernel panic|"
                      rb"crashed|Entering ACPI S5|\*\*\* Serial input|Panic on CPU")
# Serial-log milestones before dom0's first E2E-MARK (Xen's own console lines).
MILESTONES = [("xen-banner", "Xen version 4.17"), ("dom0-handover", "about to get started"),
              ("dom0-kernel-run-init", "Run /init as init process")]
TROUBLE = re.compile(r"Kernel panic|crashed|Oops|BUG:|segfault|Aborted|FATAL|Panic on CPU")
LINE = re.compile(r"^\[\s*([0-9.]+)\] (.*)$")
MAX_FILE_BYTES = 64 << 20  # nothing the harness carries back comes near this


def stamp(log_path, t0):
    t0 = float(t0)
    with open(log_path, "wb") as log:
        for raw in sys.stdin.buffer:
            line = b"[%8.3f] " % (time.time() - t0) + raw.rstrip(b"\r\n").replace(b"\r", b"") + b"\n"
            log.write(line)
            log.flush()
            if PROGRESS.search(raw):
                sys.stderr.buffer.write(b"  " + line)
                sys.stderr.flush()


def parse(lines):
    """Yield (seconds, text) for each stamped serial line."""
    for line in lines:
        m = LINE.match(line.rstrip("\n"))
        if m:
            yield float(m.group(1)), m.group(2)


def report(run, extract_only=False):
    with open(os.path.join(run, "serial.log"), encoding="utf-8", errors="replace") as f:
        lines = list(parse(f))
    files_dir = os.path.join(run, "files")
    os.makedirs(files_dir, exist_ok=True)
    results, marks, problems = [], [], []
    check_start = {}      # check name -> index of its E2E-CHECK line
    done = False
    current_file = None   # (name, size, sha256, [base64 lines], start time)
    for index, (t, text) in enumerate(lines):
        # dom0 output can share a line with kernel or Xen text; find the marker anywhere.
        if current_file is not None:
            m = re.search(r"E2E-END-FILE name=(\S+)", text)
            if m:
                name, size, digest, chunks, _ = current_file
                current_file = None
                try:
                    data = base64.b64decode("".join(chunks), validate=True)
                except ValueError as error:
                    problems.append(f"file {name}: bad base64 ({error})")
                    continue
                if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
                    problems.append(f"file {name}: got {len(data)} bytes sha256 {hashlib.sha256(data).hexdigest()},"
                                    f" dom0 sent {size} bytes sha256 {digest} (serial line lost or garbled)")
                    continue
                if "/" in name or name.startswith("."):
                    problems.append(f"file {name}: name is not a plain file name")
                    continue
                with open(os.path.join(files_dir, name), "wb") as out:
                    out.write(data)
            else:
                current_file[3].append(text.strip())
                if sum(len(c) for c in current_file[3]) > MAX_FILE_BYTES * 4 // 3 + 4:
                    problems.append(f"file {current_file[0]}: larger than {MAX_FILE_BYTES} bytes")
                    current_file = None
            continue
        m = re.search(r"E2E-BEGIN-FILE name=(\S+) size=(\d+) sha256=([0-9a-f]{64})", text)
        if m:
            current_file = (m.group(1), int(m.group(2)), m.group(3), [], t)
            continue
        m = re.search(r"E2E-RESULT name=(\S+) status=(pass|fail) detail=(.*)$", text)
        if m:
            results.append((t, m.group(1), m.group(2), m.group(3).strip(), check_start.get(m.group(1)), index))
            continue
        m = re.search(r"E2E-CHECK name=(\S+)", text)
        if m:
            check_start[m.group(1)] = index
            continue
        m = re.search(r"E2E-MARK (\S+)", text)
        if m:
            marks.append((t, m.group(1)))
            continue
        if re.search(r"(^|\s)E2E-DONE\s*$", text):
            done = True
    if current_file is not None:
        problems.append(f"file {current_file[0]}: no E2E-END-FILE (output cut off)")
    if extract_only:
        return 0
    host_path = os.path.join(run, "host-results.txt")
    if os.path.exists(host_path):
        with open(host_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split(" ", 2)
                if len(parts) >= 2 and parts[0] in ("pass", "fail"):
                    results.append((0.0, parts[1], parts[0], parts[2] if len(parts) == 3 else "", None, None))

    # Timings: milestones, dom0 marks, then QEMU's exit (from run.sh's phases file).
    timeline = []
    for name, needle in MILESTONES:
        hit = next((t for t, text in lines if needle in text), None)
        if hit is not None:
            timeline.append((hit, name))
    timeline += marks
    with open(os.path.join(run, "timings.txt"), "a") as out:
        for t, name in timeline:
            out.write(f"boot.{name} {t:.2f}\n")

    failed = [r for r in results if r[2] == "fail"]
    with open(os.path.join(run, "results.txt"), "w") as out:
        for t, name, status, detail, _, _ in results:
            out.write(f"{status} {name} {detail}\n")
        for problem in problems:
            out.write(f"fail protocol {problem}\n")

    print("== results")
    for t, name, status, detail, _, _ in results:
        print(f"  {status.upper():4} {name:28} {detail[:110]}")
    print("== serial timeline (s since QEMU start)")
    for t, name in timeline:
        print(f"  {t:7.2f}  {name}")
    ok = True
    if not results:
        print("FAIL: dom0 reported no check results")
        ok = False
    if not done:
        print("FAIL: no E2E-DONE: dom0's script did not finish (crash, panic or timeout)")
        ok = False
    for problem in problems:
        print(f"FAIL: {problem}")
        ok = False
    for t, name, status, detail, start, end in failed:
        ok = False
        print(f"FAIL: {name}: {detail}")
        if end is None:
            continue
        first = start if start is not None else max(0, end - 20)
        for _, text in lines[first:end + 1][-60:]:
            print(f"    | {text}")
    trouble = [(t, text) for t, text in lines if TROUBLE.search(text)]
    if not ok:
        for t, text in trouble[:20]:
            print(f"    ! [{t:7.2f}] {text}")
        if not done:
            print("  last serial lines:")
            for t, text in lines[-40:]:
                print(f"    | [{t:7.2f}] {text}")
    passed = len(results) - len(failed)
    print(f"e2e: {passed} passed, {len(failed) + len(problems) + (0 if done else 1) + (0 if results else 1)} failed")
    return 0 if ok else 1


def main(argv):
    if len(argv) == 4 and argv[1] == "stamp":
        stamp(argv[2], argv[3])
        return 0
    if len(argv) == 3 and argv[1] == "extract":
        return report(argv[2], extract_only=True)
    if len(argv) == 3 and argv[1] == "report":
        return report(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
