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
  rss ROOT [COMM]                  resident memory of ROOT and its descendants (only those whose
                                   command name is COMM, if given): "RSS_KiB PSS_KiB PROCESSES",
                                   RSS = sum of VmRSS (/proc/PID/status), PSS = sum of Pss
                                   (/proc/PID/smaps_rollup; shared pages split between sharers)
  rsswatch ROOT PID [SECS]         sample `rss ROOT` every SECS (0.2) until PID exits; print the
                                   peak: "RSS_KiB PSS_KiB PROCESSES SAMPLES" (peak of each)
  table RESULTS META [OUT]         render the results table (TSV in RESULTS, key=value lines in META)
"""
import math
import os
import re
import socket
import statistics
import sys
import time

MEM_SESSIONS = 100     # sessions of the memory phase's load (bench.sh MEM_SESSIONS)


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


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def _kib(path, field):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss(root, comm=None):
    """(sum VmRSS KiB, sum Pss KiB, process count) over ROOT's process tree."""
    r = p = n = 0
    for pid in tree(root):
        if comm and _comm(pid) != comm:
            continue
        v = _kib(f"/proc/{pid}/status", "VmRSS:")
        if v == 0:
            continue            # gone, or a zombie
        r += v
        p += _kib(f"/proc/{pid}/smaps_rollup", "Pss:")
        n += 1
    return r, p, n


def rsswatch(root, pid, every=0.2):
    peak = [0, 0, 0]
    samples = 0
    while alive(pid):
        r, p, n = rss(root)
        peak = [max(peak[0], r), max(peak[1], p), max(peak[2], n)]
        samples += 1
        time.sleep(every)
    return peak + [samples]


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
    order = []        # matrix cells (size, sessions), in run order
    lat_order = []    # latency levels (senders), in run order
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
            if size == "lat":
                if sess not in lat_order:
                    lat_order.append(sess)
            elif size != "mem" and (size, sess) not in order:
                order.append((size, sess))
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
    raw = dict(res)   # full precision, for the memory and latency tables
    res = {k: (f"{v:.1f}" if isinstance(v, float) else v) for k, v in res.items()}

    def get(target, size, sess, metric):
        v = res.get((target, size, sess, metric))
        if v is None:
            return None
        try:
            return float(v)
        except ValueError:
            return v

    def rawget(target, size, sess, metric):
        v = raw.get((target, size, sess, metric))
        return v if isinstance(v, float) else (None if v is None else v)

    def num(v):
        return isinstance(v, float) and not math.isnan(v)

    def cell(target, size, sess, metric):
        v = get(target, size, sess, metric)
        if v is None:
            if target in notes:
                return "n/a"
            return "-"
        return fmt_rate(v) if isinstance(v, float) else str(v)

    def ratio(a, b):
        if num(a) and num(b) and b > 0:
            return f"{a / b:.2f}x"
        return "n/a"

    def size_label(s):
        n = int(s)
        return f"{n // 1024} KiB" if n % 1024 == 0 else f"{n} B"

    def count_label(s):
        return f"{int(s):,}".replace(",", " ")

    # A table is a list of columns: (title, width, function of (size, sessions) -> text).
    def metric(target, name):
        return lambda size, sess: cell(target, size, sess, name)

    def ratio_of(name, a="smarthost", b="postfix", inverse=False):
        def f(size, sess):
            x, y = get(a, size, sess, name), get(b, size, sess, name)
            return ratio(y, x) if inverse else ratio(x, y)
        return f

    def render(title, cols, rows):
        out = title.split("\n")
        def fit(text, w):            # a negative width aligns left
            return f"{text:<{-w}}" if w < 0 else f"{text:>{w}}"
        header = "  ".join(fit(name, w) for name, w, _ in cols)
        out.append(header)
        out.append("-" * len(header))
        for row in rows:
            out.append("  ".join(fit(str(fn(*row)), w) for _, w, fn in cols))
        out.append("")
        return out

    basic = [
        ("size", 8, lambda size, sess: size_label(size)),
        ("sessions", 8, lambda size, sess: sess),
        ("messages", 8, lambda size, sess: res.get(("meta", size, sess, "messages"), "?").split(".")[0]),
    ]
    lines = []
    if order:
        lines += render("Accept rate, msg/s: messages / wall seconds until smtp-source has had every 250", basic + [
            ("smarthost", 10, metric("smarthost", "accept")),
            ("postfix", 10, metric("postfix", "accept")),
            ("ratio", 7, ratio_of("accept")),
            ("sink-limit", 10, metric("sink", "accept")),
        ], order)
        lines += render("End to end, msg/s: messages / wall seconds from the start until the relay's upstream "
                        "smtp-sink has them all;\nCPU, us/msg: user+sys of the relay's processes over the same span "
                        "(accepting and relaying), per message", basic + [
            ("e2e smarthost", 13, metric("smarthost", "e2e")),
            ("e2e postfix", 11, metric("postfix", "e2e")),
            ("ratio", 7, ratio_of("e2e")),
            ("CPU smarthost", 13, metric("smarthost", "cpu")),
            ("CPU postfix", 11, metric("postfix", "cpu")),
            ("CPU ratio", 9, ratio_of("cpu", inverse=True)),
        ], order)
        lines.append("(ratio = smarthost / postfix; CPU ratio = postfix CPU / smarthost CPU, > 1 means smarthost is cheaper)")
        lines.append("")

    # ---- latency
    def ms(v):
        if v is None:
            return "-"
        if not isinstance(v, float):
            return str(v)
        return "nan" if math.isnan(v) else (f"{v:,.0f}" if v >= 100 else f"{v:.1f}")

    def count(v):
        return f"{v:,.0f}" if num(v) else ("-" if v is None else str(v))

    lat_measures = [("250 p50", "ack_p50", ms), ("250 p99", "ack_p99", ms),
                    ("arrival p50", "e2e_p50", ms), ("arrival p99", "e2e_p99", ms),
                    ("up. conns", "up_conns", count), ("up. parallel", "up_peak", count)]
    if lat_order:
        rows = [(n, label, m, f) for n in lat_order for label, m, f in lat_measures]

        def lat(target):
            return lambda n, label, m, f: f(rawget(target, "lat", n, m)) if (target, "lat", n, m) in raw else (
                "n/a" if target in notes or "latency" in notes else "-")

        def lat_ratio(n, label, m, f):
            a, b = rawget("smarthost", "lat", n, m), rawget("postfix", "lat", n, m)
            if f is not ms:
                return ""
            return f"{b / a:.2f}x" if num(a) and num(b) and a > 0 else "n/a"

        lines += render(
            "Latency, ms, per message (1 KiB, a new connection per message; each sender sends its next message once\n"
            "the previous one has arrived upstream): 250 = submit start (connect) -> 250 after the data;\n"
            "arrival = submit start -> the relay's upstream has the whole message. Median of the runs' percentiles.",
            [("senders", 7, lambda n, label, m, f: n),
             ("messages", 8, lambda n, label, m, f: res.get(("meta", "lat", n, "messages"), "?").split(".")[0]),
             ("measure", -12, lambda n, label, m, f: label),
             ("smarthost", 10, lat("smarthost")),
             ("postfix", 10, lat("postfix")),
             ("pf/sh", 7, lat_ratio),
             ("sink-limit", 10, lat("sink"))], rows)
        lines.append("(pf/sh = postfix / smarthost, > 1 means smarthost is faster; sink-limit = the senders straight "
                     "into the latency sink;\n up. conns = connections that carried mail to the latency sink in a run, "
                     "up. parallel = most transactions there at once)")
        lines.append("")

    # ---- memory
    mem_phases = sorted({k[2] for k in raw if k[1] == "mem"})
    mem_relays = [t for t in ("smarthost", "postfix") if any(k[0] == t and k[1] == "mem" for k in raw)]
    conns_counts = sorted({int(p.split("_")[1]) for p in mem_phases if p.startswith("conns_")})
    load_sizes = sorted({int(p.split("_")[1]) for p in mem_phases if p.startswith("load_")})

    def memval(target, phase, m):
        return raw.get((target, "mem", phase, m))

    def per_conn(target, conns, kind):
        """KiB per idle connection: one smtpd process (postfix), or the growth / connections."""
        phase = f"conns_{conns}"
        if memval(target, phase, "smtpd_procs") is not None:
            n, v = memval(target, phase, "smtpd_procs"), memval(target, phase, f"smtpd_{kind}")
            return v / n if num(n) and num(v) and n > 0 else memval(target, phase, "rss")
        v, base, ok = memval(target, phase, kind), memval(target, phase, f"base_{kind}"), memval(target, phase, "ok")
        if num(v) and num(base) and num(ok) and ok > 0:
            return (v - base) / ok
        r = memval(target, phase, "rss")           # a failure or n/a is recorded on rss
        return r if isinstance(r, str) else None

    if mem_relays:
        rows = [("idle after warm-up", "warm"), ("idle before the memory phase", "idle")]
        rows += [(f"peak, {MEM_SESSIONS} sessions, {size_label(s)}", f"load_{s}") for s in load_sizes]
        rows += [(f"holding {count_label(c)} idle connections", f"conns_{c}") for c in conns_counts]
        rows += [("idle after they closed", "after")]
        rows += [(f"KiB per idle connection, {count_label(c)}", f"per_{c}") for c in conns_counts]

        def memcell(target, kind):
            def f(label, phase):
                if phase.startswith("per_") and kind == "procs":
                    return ""
                if phase.startswith("per_"):
                    v = per_conn(target, int(phase[4:]), kind)
                    return f"{v:,.1f}" if num(v) else (v or "-")
                if kind == "procs":
                    v = memval(target, phase, "procs")
                    return f"{v:.0f}" if num(v) else "-"
                v = memval(target, phase, kind)
                if v is None:
                    v = memval(target, phase, "rss")      # a failure or n/a is recorded on rss
                    return v if isinstance(v, str) else "-"
                return f"{v / 1024:,.1f}" if num(v) else str(v)
            return f

        cols = [("measure", -36, lambda label, phase: label)]
        for t in mem_relays:
            cols += [(f"{t} RSS", len(t) + 4, memcell(t, "rss")), (f"{t} PSS", len(t) + 4, memcell(t, "pss")),
                     ("procs", 5, memcell(t, "procs"))]
        lines += render(
            "Memory, MiB: VmRSS summed over the relay's processes (RSS), and PSS (shared pages split between the\n"
            "processes that share them; a sum of RSS counts Postfix's shared libraries once per process)", cols, rows)
        lines.append("(KiB per idle connection: smarthost = (RSS holding N - RSS just before) / N, a lower bound when N is\n"
                     " small: heap freed after the load phases is reused; postfix = one smtpd process per connection: mean\n"
                     " RSS / PSS of its smtpd processes while holding N. Postfix's idle figures include the smtpd/cleanup\n"
                     " processes that linger after load (max_idle = 100 s as shipped), hence its procs column)")
        lines.append("")

    # ---- targets
    def verdict(ok):
        return "MET" if ok else "NOT MET"

    tlines = []

    def t(desc, ok, detail):
        tlines.append(f"  {desc:<52} {('n/a' if ok is None else verdict(ok)):<8} {detail}")

    for size, sess in order:
        if sess == "20":
            sh, pf = get("smarthost", size, sess, "accept"), get("postfix", size, sess, "accept")
            ok = sh >= 2 * pf if num(sh) and num(pf) and pf > 0 else None
            t(f"accept >= 2x postfix, {size_label(size)} x{sess}", ok,
              f"{sh / pf:.2f}x ({fmt_rate(sh)} vs {fmt_rate(pf)} msg/s)" if ok is not None else "")
    busy = [(size, sess) for size, sess in order if int(sess) >= 20]
    for size, sess in busy:
        sh, pf = get("smarthost", size, sess, "accept"), get("postfix", size, sess, "accept")
        ok = sh >= 5 * pf if num(sh) and num(pf) and pf > 0 else None
        t(f"accept >= 5x postfix, {size_label(size)} x{sess}", ok,
          f"{sh / pf:.2f}x ({fmt_rate(sh)} vs {fmt_rate(pf)} msg/s)" if ok is not None else "")
    for size, sess in busy:
        sh, lim = get("smarthost", size, sess, "accept"), get("sink", size, sess, "accept")
        ok = sh >= 0.5 * lim if num(sh) and num(lim) and lim > 0 else None
        t(f"accept >= 50% of the tool-pair limit, {size_label(size)} x{sess}", ok,
          f"{sh / lim:.0%} ({fmt_rate(sh)} of {fmt_rate(lim)} msg/s)" if ok is not None else "")
    for size, sess in busy:
        sh, pf = get("smarthost", size, sess, "e2e"), get("postfix", size, sess, "e2e")
        ok = sh >= 5 * pf if num(sh) and num(pf) and pf > 0 else None
        t(f"end to end >= 5x postfix, {size_label(size)} x{sess}", ok,
          f"{sh / pf:.2f}x ({fmt_rate(sh)} vs {fmt_rate(pf)} msg/s)" if ok is not None else "")
    if "20" in lat_order:
        sh, pf, fl = (rawget(r, "lat", "20", "e2e_p99") for r in ("smarthost", "postfix", "sink"))
        ok = sh < 50 if num(sh) else None
        t("latency p99 (submit -> arrival) < 50 ms, 20 senders", ok,
          f"{ms(sh)} ms = {sh / 50:.2f} of the target (postfix {ms(pf)} ms; tools alone {ms(fl)} ms)"
          if ok is not None else str(sh or ""))
    if conns_counts and "smarthost" in mem_relays:
        c = conns_counts[-1]
        v = per_conn("smarthost", c, "rss")
        pc = [x for x in conns_counts if memval("postfix", f"conns_{x}", "smtpd_procs") is not None]
        pf = ""
        if pc:
            pv, pp = per_conn("postfix", pc[-1], "rss"), per_conn("postfix", pc[-1], "pss")
            pf = (f"; postfix: a process per connection, {pv:,.0f} KiB RSS / {pp:,.0f} KiB PSS each"
                  if num(pv) and num(pp) else "")
        ok = v < 16 if num(v) else None
        t(f"< 16 KiB per idle connection ({count_label(c)} held)", ok,
          (f"{v:.1f} KiB = {v / 16:.2f} of the target" if ok is not None else str(v or "")) + pf)
    if load_sizes and "smarthost" in mem_relays:
        peaks = [(memval("smarthost", f"load_{s}", "rss"), s) for s in load_sizes]
        nums = [(v, s) for v, s in peaks if num(v)]
        if nums:
            v, s = max(nums)
            pr, pp = memval("postfix", f"load_{s}", "rss"), memval("postfix", f"load_{s}", "pss")
            pn = memval("postfix", f"load_{s}", "procs")
            pf = (f"; postfix {pr / 1024:,.0f} MiB RSS over {pn:.0f} processes, {pp / 1024:,.0f} MiB PSS"
                  if num(pr) and num(pp) and num(pn) else "")
            t(f"RSS at {MEM_SESSIONS} sessions < 64 MiB", v < 64 * 1024,
              f"peak {v / 1024:.1f} MiB ({size_label(s)}) = {v / 65536:.2f} of the target{pf}")
        else:
            t(f"RSS at {MEM_SESSIONS} sessions < 64 MiB", None, str(peaks[0][0]))
    if tlines:
        lines.append("targets (issue 5; smarthost's figure, with Postfix's from the same run):")
        lines.extend(tlines)
        lines.append("")
    for target, note in notes.items():
        lines.append(f"{target}: n/a ({note})")
    # per-cell failures are listed in full here, the table only has room for a word
    groups = {}       # (target, metric, value, why) -> cells, so a reason shared by a column prints once
    for key, why in details.items():
        target, size, sess, metric = key
        if size == "lat":
            where = f"latency, {sess} senders"
        elif size == "mem":
            where = f"memory, {sess}"
        else:
            where = f"{size_label(size)} x{sess}"
        groups.setdefault((target, metric, res[key], why), []).append((size, where))
    for (target, metric, value, why), where in groups.items():
        matrix_cells = [w for s, w in where if s not in ("lat", "mem")]
        cells = "all cells" if order and len(matrix_cells) == len(order) == len(where) else ", ".join(w for _, w in where)
        lines.append(f"{target} {metric} ({cells}): {value} ({why})")
    if probes:
        lines.append("")
        lines.append("durability probe (strace -f on the relay while it accepts and relays, 1 KiB, 1 session):")
        for target, text in probes:
            lines.append(f"  {target:<10} {text}")
    if lines and lines[-1] != "":
        lines.append("")
    lines.append("machine:")
    for k in ("date", "host", "nproc", "cpu", "mem", "kernel", "os", "tmpdir", "filesystem",
              "postfix", "smarthost", "smarthost_commit", "command", "latency", "memory", "load", "notes"):
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
    if cmd == "rss":
        print(*rss(int(args[0]), args[1] if len(args) > 1 else None))
        return 0
    if cmd == "rsswatch":
        print(*rsswatch(int(args[0]), int(args[1]), float(args[2]) if len(args) > 2 else 0.2))
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
