"""spindle micro: refused options exit 2 with a message that says what is
wrong; the switch and spawn benchmarks print every row the README names,
each with a positive measurement of one run (the spindle/jump rows may say
instead that a sanitizer build leaves them out), as JSON and as a table."""
import json
import subprocess
import sys

spindle = sys.argv[1]
failures = []


def run(args, timeout=150):
    try:
        return subprocess.run([spindle, "micro"] + args, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        # An option taken instead of refused runs every benchmark.
        return subprocess.CompletedProcess(args, -1, "", "timed out after %d s" % timeout)


REFUSED = [
    (["--runs", "0"], "--runs wants a whole number from 1 to 64, not '0'"),
    (["--runs", "3x"], "not '3x'"),
    (["--runs", "65"], "not '65'"),
    (["--runs", ""], "--runs wants"),
    (["--bench", "nonsense"], "unknown bench 'nonsense'"),
    (["--bench", "switch", "extra"], "unexpected argument 'extra'"),
    (["--frobnicate"], "usage: spindle micro"),
]
for args, want in REFUSED:
    r = run(args, timeout=30)
    if r.returncode != 2 or want not in r.stderr or r.stdout.strip():
        failures.append("micro %s: exit %d, stderr %r, stdout %r (wanted exit 2 and %r)"
                        % (args, r.returncode, r.stderr.strip(), r.stdout.strip()[:200], want))

SWITCH = ["spindle/asm", "spindle/asm-nofp", "spindle/ucontext", "spindle/sjlj",
          "spindle/star", "spindle/yield_to", "spindle/asm-fpflags", "spindle/jump",
          "spindle/jump-nofp"]
SPAWN = ["spindle/fixed", "spindle/virtual", "spindle/shared"]
MAY_SKIP = {"spindle/jump": "not under a sanitizer", "spindle/jump-nofp": "not under a sanitizer"}


def check_json(bench, impls):
    r = run(["--bench", bench, "--runs", "1", "--json"])
    if r.returncode != 0:
        failures.append("micro --bench %s --json: exit %d: %s" % (bench, r.returncode, r.stderr))
        return
    rows = []
    for line in r.stdout.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            failures.append("micro --bench %s --json: not JSON: %r" % (bench, line))
    got = [row.get("impl") for row in rows]
    if got != impls:
        failures.append("micro --bench %s: rows %s, wanted %s" % (bench, got, impls))
    for row in rows:
        impl = row.get("impl")
        if row.get("bench") != bench:
            failures.append("%s: bench %r, wanted %r" % (impl, row.get("bench"), bench))
        if "skipped" in row:
            if MAY_SKIP.get(impl) != row["skipped"]:
                failures.append("%s %s: skipped (%s)" % (bench, impl, row["skipped"]))
            continue
        value, lo, hi = row.get("value"), row.get("min"), row.get("max")
        if not (isinstance(value, (int, float)) and value > 0 and lo <= value <= hi):
            failures.append("%s %s: value %r min %r max %r" % (bench, impl, value, lo, hi))
        if row.get("unit") != "ns/op" or row.get("runs") != 1:
            failures.append("%s %s: unit %r runs %r" % (bench, impl, row.get("unit"),
                                                         row.get("runs")))


check_json("switch", SWITCH)
check_json("spawn", SPAWN)

# The table: a header, the column names, then one line per row.
r = run(["--bench", "spawn", "--runs", "1"])
lines = r.stdout.splitlines()
if r.returncode != 0 or len(lines) != 2 + len(SPAWN):
    failures.append("micro --bench spawn (table): exit %d, %d lines: %r"
                    % (r.returncode, len(lines), r.stdout))
else:
    if not lines[0].startswith("# spindle micro: median of 1 runs"):
        failures.append("table header: %r" % lines[0])
    if lines[1].split() != ["bench", "impl", "median", "min", "max", "unit", "runs"]:
        failures.append("table columns: %r" % lines[1])
    for line, impl in zip(lines[2:], SPAWN):
        f = line.split()
        if f[:2] != ["spawn", impl] or float(f[2]) <= 0 or f[5] != "ns/op" or f[6] != "1":
            failures.append("table row: %r" % line)

for f in failures:
    print("FAIL:", f)
print("%d failures" % len(failures))
sys.exit(1 if failures else 0)
