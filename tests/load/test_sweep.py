"""spindle sweep with tiny settings: against a stand-in server (fake_serve.py)
whose models succeed, refuse connections, die before READY and crash mid-run,
every file is written and every failure is recorded as such while the sweep
goes on; then against whatever real models `spindle serve` has built (or a
line saying none is)."""
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile

from loadlib import expect

spindle = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
tmp = tempfile.mkdtemp(prefix="spindle-sweep-test-")
try:
    out = os.path.join(tmp, "fake")
    p = subprocess.run([spindle, "sweep", "--server-cmd", f"{sys.executable} {here}/fake_serve.py",
                        "--models", "ok,refuse,die,crash", "--conc", "1,3", "--duration", "1s",
                        "--warmup", "50ms", "--out", out],
                       capture_output=True, text=True, timeout=50)
    expect(p.returncode == 0, f"the sweep ends with status 0 despite failing models "
                              f"(got {p.returncode}: {p.stderr[-500:]})")
    for f in ("table.txt", "table.md", "results.csv", "results.jsonl"):
        expect(os.path.getsize(os.path.join(out, f)) > 0, f"{f} is written")
    rows = [json.loads(l) for l in open(os.path.join(out, "results.jsonl"))]
    by = {(r["model"], r["conc"]): r for r in rows}
    expect(len(rows) == 8, f"one JSON line per model and level ({len(rows)})")
    for k in ("model", "conc", "rps", "p50_us", "p99_us", "errors", "keepalive"):
        expect(all(k in r for r in rows), f"every JSON line has '{k}'")
    expect(all(by[("ok", c)]["errors"] == 0 and by[("ok", c)]["rps"] > 0 for c in (1, 3)),
           "the working model: requests and no errors at each level")
    expect(all(by[("refuse", c)]["errors_connect"] > 0 for c in (1, 3)),
           "refused connections are recorded as connect errors")
    expect(all(by[("die", c)].get("failed") and "before READY" in by[("die", c)]["note"]
               for c in (1, 3)), "a server that dies before READY is recorded as failed")
    expect(all(by[("crash", c)]["errors"] > 0 and "during the run" in by[("crash", c)]["note"]
               for c in (1, 3)), "a server that dies mid-run: its errors and a note")
    table = open(os.path.join(out, "table.txt")).read()
    expect("1: " in table and "(error)" in table, "the classic table has its (error) marks")
    with open(os.path.join(out, "results.csv")) as f:
        crows = list(csv.DictReader(f))
    expect(len(crows) == 8 and crows[0]["model"] == "ok", "results.csv: a row per point")
    md = open(os.path.join(out, "table.md")).read()
    expect("| ok |" in md and "failed" in md, "table.md: models x concurrency")
    if shutil.which("gnuplot"):
        expect(os.path.getsize(os.path.join(out, "rps.svg")) > 0 and
               os.path.getsize(os.path.join(out, "p99.svg")) > 0, "rps.svg and p99.svg drawn")
    else:
        expect("gnuplot is not installed" in p.stderr, "no gnuplot: plots skipped with a line")

    # Refused options.
    for args, want in ((["--conc", "1,,2"], "--conc wants"), (["--models", "nosuch"], "unknown model"),
                       (["--duration", "fast"], "--duration wants"),
                       (["--classic", "--duration", "1s"], "not a duration"),
                       (["--requests", "5"], "--requests goes with --classic"),
                       (["--bogus"], "unknown option")):
        q = subprocess.run([spindle, "sweep", *args, "--out", os.path.join(tmp, "x")],
                           capture_output=True, text=True, timeout=10)
        expect(q.returncode == 2 and want in q.stderr, f"sweep {' '.join(args)}: exit 2, '{want}'")

    # The real models, whichever are built: one short level each.
    out = os.path.join(tmp, "real")
    p = subprocess.run([spindle, "sweep", "--quick", "--conc", "2", "--duration", "200ms",
                        "--warmup", "50ms", "--json", "--out", out],
                       capture_output=True, text=True, timeout=55)
    expect(p.returncode == 0, f"sweep over the real models ends with 0 ({p.stderr[-300:]})")
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    built = [l for l in lines if "skipped" not in l]
    if not built:
        print("SKIP (part): no server model is built yet: every model reported as not built")
        expect(all("not built" in l["skipped"] for l in lines) and lines,
               "each model is listed as not built")
    else:
        for l in built:
            expect("rps" in l, f"model {l['model']}: measured or recorded "
                               f"({l.get('errors')} errors, {l.get('note', '')})")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
print("PASS")
