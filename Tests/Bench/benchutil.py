#!/usr/bin/python3
"""Small helpers for Tests/Bench/bench.sh (ports, waiting, counting, the table).

Subcommands:
  freeports N                      print N distinct free TCP ports on 127.0.0.1
  waitport PORT SECS [PID]         wait until 127.0.0.1:PORT accepts a connection;
                                   exit 1 on timeout, 2 if PID died first
  sinkcount FILE                   messages an `smtp-sink -c` has received (its stdout file)
  waitsink FILE TARGET SECS STALL  wait until sinkcount >= TARGET; print the time it got there
                                   (epoch seconds); exit 1 if no progress for STALL s or SECS total
  rate N T0 T1                     N / (T1 - T0), one decimal
  cputime PID                      CPU seconds used by PID and its descendants (incl. reaped ones)
  cpupermsg N CPU0 CPU1            (CPU1 - CPU0) / N in microseconds
  table RESULTS META [OUT]         render the results table (TSV in RESULTS, key=value lines in META)
"""
import os
import re
import socket
import statistics
import sys
import time


def freeports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    print(" ".join(map(str, ports)))


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def waitport(port, secs, pid=None):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if pid is not None and not alive(pid):
            return 2
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return 0
        except OSError:
            time.sleep(0.1)
    return 1


_MESG = re.compile(rb"mesg=(\d+)")


def sinkcount(path):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 4096))
            tail = f.read()
    except OSError:
        return 0
    found = _MESG.findall(tail)
    return int(found[-1]) if found else 0


def waitsink(path, target, secs, stall):
    start = time.monotonic()
    last, last_change = -1, start
    while True:
        n = sinkcount(path)
        now = time.monotonic()
        if n >= target:
            print(f"{time.time():.6f}")
            return 0
        if n != last:
            last, last_change = n, now
        if now - last_change > stall or now - start > secs:
            print(f"stalled at {n}", file=sys.stderr)
            print(n)
            return 1
        time.sleep(0.02)


def _isnum(v):
    try:
        float(v)
        return True
    except ValueError:
        return False


def tree(root):
    """ROOT and its descendants' pids."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in parent:
            out.append(pid)
            todo.extend(p for p, pp in parent.items() if pp == pid)
    return out


def synccount(path):
    """Count the sync calls in an strace -f output file."""
    counts = {}
    with open(path, errors="replace") as f:
        for line in f:
            m = re.match(r"^(?:\[pid\s+\d+\]\s+|\d+\s+)?(fsync|fdatasync|sync_file_range|syncfs|sync|msync)\(", line)
            if m:
                counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


def cputime(root):
    """CPU seconds (user+sys) used so far by process ROOT and its descendants, counting the
    children that have exited and been waited for (cutime/cstime of their parent). Postfix's
    master reaps its smtpd/cleanup/... processes, so the sum over the tree is the instance's
    CPU even though processes come and go."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the comm: state ppid ... utime(12) stime(13) cutime(14) cstime(15), 0-based from state
        stats[int(d)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    children = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
            todo.extend(children.get(pid, []))
    return total / tick


def fmt_rate(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return f"{f:,.0f}" if f >= 100 else f"{f:,.1f}"


def table(results_path, meta_path, out_path=None):
    meta = {}
    with open(meta_path) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                meta[k] = v
    res = {}          # (target, size, sessions, metric) -> value (float or string)
    details = {}      # same key -> why a cell is not a number
    notes = {}        # target -> note (why a whole column is n/a)
    probes = []       # (target, durability probe result)
    order = []
    with open(results_path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if parts[0] == "note":
                notes[parts[1]] = parts[2]
                continue
            if parts[0] == "probe":
                probes.append((parts[1], parts[2]))
                continue
            target, size, sess, metric, value = parts[:5]
            key = (size, sess)
            if key not in order:
                order.append(key)
            res.setdefault((target, size, sess, metric), []).append(value)
            if len(parts) > 5 and parts[5]:
                details[(target, size, sess, metric)] = parts[5]

    # with BENCH_REPEAT a cell has several trials: the median of them, or the first failure
    def collapse(values):
        try:
            nums = sorted(float(v) for v in values)
        except ValueError:
            return next(v for v in values if not _isnum(v))
        return statistics.median(nums)

    res = {k: collapse(v) for k, v in res.items()}
    res = {k: (f"{v:.1f}" if isinstance(v, float) else v) for k, v in res.items()}

    def get(target, size, sess, metric):
        v = res.get((target, size, sess, metric))
        if v is None:
            return None
        try:
            return float(v)
        except ValueError:
            return v

    def cell(target, size, sess, metric):
        v = get(target, size, sess, metric)
        if v is None:
            if target in notes:
                return "n/a"
            return "-"
        return fmt_rate(v) if isinstance(v, float) else str(v)

    def ratio(a, b):
        if isinstance(a, float) and isinstance(b, float) and b > 0:
            return f"{a / b:.2f}x"
        return "n/a"

    def size_label(s):
        n = int(s)
        return f"{n // 1024} KiB" if n % 1024 == 0 else f"{n} B"

    # A table is a list of columns: (title, width, function of (size, sessions) -> text).
    def metric(target, name):
        return lambda size, sess: cell(target, size, sess, name)

    def ratio_of(name, a="smarthost", b="postfix", inverse=False):
        def f(size, sess):
            x, y = get(a, size, sess, name), get(b, size, sess, name)
            return ratio(y, x) if inverse else ratio(x, y)
        return f

    basic = [
        ("size", 8, lambda size, sess: size_label(size)),
        ("sessions", 8, lambda size, sess: sess),
        ("messages", 8, lambda size, sess: res.get(("meta", size, sess, "messages"), "?").split(".")[0]),
    ]
    tables = [
        ("Accept rate, msg/s: messages / wall seconds until smtp-source has had every 250", basic + [
            ("smarthost", 10, metric("smarthost", "accept")),
            ("postfix", 10, metric("postfix", "accept")),
            ("ratio", 7, ratio_of("accept")),
            ("sink-limit", 10, metric("sink", "accept")),
        ]),
        ("End to end, msg/s: messages / wall seconds from the start until the relay's upstream "
         "smtp-sink has them all;\nCPU, us/msg: user+sys of the relay's processes over the same span "
         "(accepting and relaying), per message", basic + [
            ("e2e smarthost", 13, metric("smarthost", "e2e")),
            ("e2e postfix", 11, metric("postfix", "e2e")),
            ("ratio", 7, ratio_of("e2e")),
            ("CPU smarthost", 13, metric("smarthost", "cpu")),
            ("CPU postfix", 11, metric("postfix", "cpu")),
            ("CPU ratio", 9, ratio_of("cpu", inverse=True)),
        ]),
    ]
    lines = []
    for title, cols in tables:
        lines.extend(title.split("\n"))
        header = "  ".join(f"{name:>{w}}" for name, w, _ in cols)
        lines.append(header)
        lines.append("-" * len(header))
        for size, sess in order:
            lines.append("  ".join(f"{str(fn(size, sess)):>{w}}" for _, w, fn in cols))
        lines.append("")
    lines.append("(ratio = smarthost / postfix; CPU ratio = postfix CPU / smarthost CPU, > 1 means smarthost is cheaper)")
    verdicts = []
    for size, sess in order:
        if sess == "20":
            sh, pf = get("smarthost", size, sess, "accept"), get("postfix", size, sess, "accept")
            if isinstance(sh, float) and isinstance(pf, float) and pf > 0:
                ok = sh >= 2 * pf
                verdicts.append(f"target smarthost >= 2x postfix accept rate, {size_label(size)}, 20 sessions: "
                                f"{'MET' if ok else 'NOT MET'} ({sh / pf:.2f}x)")
            else:
                verdicts.append(f"target smarthost >= 2x postfix accept rate, {size_label(size)}, 20 sessions: n/a")
    lines.append("")
    lines.extend(verdicts)
    for target, note in notes.items():
        lines.append(f"{target}: n/a ({note})")
    # per-cell failures are listed in full here, the table only has room for a word
    groups = {}       # (target, metric, value, why) -> cells, so a reason shared by a column prints once
    for key, why in details.items():
        target, size, sess, metric = key
        groups.setdefault((target, metric, res[key], why), []).append(f"{size_label(size)} x{sess}")
    for (target, metric, value, why), where in groups.items():
        cells = "all cells" if len(where) == len(order) else ", ".join(where)
        lines.append(f"{target} {metric} ({cells}): {value} ({why})")
    if probes:
        lines.append("")
        lines.append("durability probe (strace -f on the relay while it accepts and relays, 1 KiB, 1 session):")
        for target, text in probes:
            lines.append(f"  {target:<10} {text}")
    lines.append("")
    lines.append("machine:")
    for k in ("date", "host", "nproc", "cpu", "mem", "kernel", "os", "tmpdir", "filesystem",
              "postfix", "smarthost", "smarthost_commit", "command", "load", "notes"):
        if k in meta:
            lines.append(f"  {k:<16} {meta[k]}")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if out_path:
        with open(out_path, "w") as f:
            f.write(text)


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "freeports":
        freeports(int(args[0]))
        return 0
    if cmd == "waitport":
        return waitport(int(args[0]), float(args[1]), int(args[2]) if len(args) > 2 else None)
    if cmd == "sinkcount":
        print(sinkcount(args[0]))
        return 0
    if cmd == "waitsink":
        return waitsink(args[0], int(args[1]), float(args[2]), float(args[3]))
    if cmd == "tree":
        print(" ".join(map(str, tree(int(args[0])))))
        return 0
    if cmd == "synccount":        # synccount STRACE_OUT N -> "1.00 (fsync 20)"
        counts, n = synccount(args[0]), int(args[1])
        total = sum(counts.values())
        parts = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
        print(f"{total / n:.2f} sync calls per message ({parts}; {n} messages)")
        return 0
    if cmd == "cputime":
        print(f"{cputime(int(args[0])):.2f}")
        return 0
    if cmd == "cpupermsg":        # cpupermsg N CPU0 CPU1 -> microseconds of CPU per message
        n, c0, c1 = int(args[0]), float(args[1]), float(args[2])
        print(f"{(c1 - c0) * 1e6 / n:.1f}")
        return 0
    if cmd == "rate":
        n, t0, t1 = int(args[0]), float(args[1]), float(args[2])
        print(f"{n / (t1 - t0):.1f}" if t1 > t0 else "inf")
        return 0
    if cmd == "table":
        table(args[0], args[1], args[2] if len(args) > 2 and args[2] else None)
        return 0
    print(f"unknown subcommand {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
