#!/usr/bin/env bash
# spindle's HTTP models against nginx, with wrk, keep-alive, in one run.
#
#   scripts/vs-nginx.sh [-d SECONDS] [-r ROUNDS] [-w WARMUP] [-c "100 1000 10000"]
#                       [-m "coro epoll stackless uring mn"] [-b build/tools/spindle]
#
# nginx (nginx-light, one worker, access log off, keepalive_requests raised)
# serves the same hello page as spindle's `/`.  The server runs on CPU 0,
# wrk (one thread) on CPU 1.  Rounds are interleaved (nginx, model A, model
# B, ... then the next round) so that drift on a shared machine hits every
# server alike.  Per connection count and model it prints the median
# requests/s with min and max, the ratio to nginx's median of the same
# rounds, the server's CPU time per request (utime+stime from /proc, the
# server and its children), how busy each CPU was during the runs (from
# /proc/stat: when CPU 1, wrk's, is near 100% and CPU 0 is not, the client
# limits the rate and the ratio compares wrk's, not the servers'), and
# wrk's errors summed over the rounds.
#
# A model may name its binary, to compare two builds of the same model:
#   -m "coro coro@/path/to/other/spindle"
# Each server is started fresh for each measurement and warmed up with a
# short wrk run of the same concurrency first.
set -euo pipefail
cd "$(dirname "$0")/.."

dur=5
rounds=3
warm=1
conns="100 1000 10000"
models="coro epoll stackless uring mn"
bin=build/tools/spindle

usage() {
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-2}"
}
while getopts "d:r:w:c:m:b:h" opt; do
    case $opt in
    d) dur=$OPTARG ;;
    r) rounds=$OPTARG ;;
    w) warm=$OPTARG ;;
    c) conns=$OPTARG ;;
    m) models=$OPTARG ;;
    b) bin=$OPTARG ;;
    h) usage 0 ;;
    *) usage ;;
    esac
done

die() { echo "vs-nginx: $*" >&2; exit 1; }

nginx_bin=$(command -v nginx || true)
[ -z "$nginx_bin" ] && [ -x /usr/sbin/nginx ] && nginx_bin=/usr/sbin/nginx
[ -n "$nginx_bin" ] || die "nginx is not installed (apt-get install nginx-light, or scripts/deps.sh)"
command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk, or scripts/deps.sh)"
command -v taskset >/dev/null || die "taskset is missing (util-linux)"
command -v python3 >/dev/null || die "python3 is missing (it picks nginx's free port)"
[ "$(nproc --all)" -ge 2 ] || die "needs 2 CPUs: the server on CPU 0, wrk on CPU 1"
for m in $models; do
    b=$bin
    case $m in *@*) b=${m#*@} ;; esac
    [ -x "$b" ] || die "no spindle binary at $b (scripts/build.sh build)"
done

# 10,000 connections need as many descriptors on each side, plus slack.
maxc=0
for c in $conns; do [ "$c" -gt "$maxc" ] && maxc=$c; done
need=$((maxc + 1000))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
    ulimit -n "$need" 2>/dev/null ||
        die "-c $maxc needs ulimit -n $need; the hard limit is $(ulimit -Hn)"
fi

tmp=$(mktemp -d /tmp/spindle-vs-nginx.XXXXXX)
srv_pid=
cleanup() {
    if [ -n "$srv_pid" ]; then
        kill -TERM "$srv_pid" 2>/dev/null || true
        wait "$srv_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() { # port: up to 5 s
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# Starts nginx or a spindle model on CPU 0; sets srv_pid and port.
start_server() {
    local spec=$1
    if [ "$spec" = nginx ]; then
        mkdir -p "$tmp/nginx"
        port=$(free_port)
        cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
worker_rlimit_nofile $need;
events { worker_connections $need; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    server {
        listen 127.0.0.1:$port backlog=4096;
        location / {
            default_type "text/plain; charset=utf-8";
            return 200 "Hello, World!\n";
        }
    }
}
EOF
        taskset -c 0 "$nginx_bin" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" \
            -e "$tmp/nginx/error.log" >/dev/null 2>"$tmp/nginx/stderr" &
        srv_pid=$!
        wait_port "$port" || die "nginx did not start: $(cat "$tmp/nginx/stderr")"
    else
        local model=${spec%%@*} b=$bin
        case $spec in *@*) b=${spec#*@} ;; esac
        # A fresh file per start: the background child truncates its
        # output only once it runs, and an old READY line would name the
        # previous server's port.
        nstart=$((nstart + 1))
        local ready=$tmp/ready.$nstart
        taskset -c 0 "$b" serve --model "$model" --port 0 >"$ready" 2>"$tmp/stderr" &
        srv_pid=$!
        port=
        for _ in $(seq 50); do
            port=$(awk '/^READY/ {print $2}' "$ready" 2>/dev/null || true)
            [ -n "$port" ] && break
            sleep 0.1
        done
        [ -n "$port" ] || die "$spec did not start: $(cat "$tmp/stderr")"
    fi
}

stop_server() {
    kill -TERM "$srv_pid" 2>/dev/null || true
    wait "$srv_pid" 2>/dev/null || true
    srv_pid=
}

# CPU clock ticks (utime+stime) of pid and all its descendants.
cpu_ticks() {
    local total=0 p kids
    for p in "$@"; do
        if [ -r "/proc/$p/stat" ]; then
            # Fields 14 and 15, counted after the ")" that ends the name.
            local t
            t=$(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')
            total=$((total + ${t:-0}))
        fi
        kids=$(cat /proc/"$p"/task/*/children 2>/dev/null || true)
        if [ -n "$kids" ]; then
            # shellcheck disable=SC2086
            total=$((total + $(cpu_ticks $kids)))
        fi
    done
    echo "$total"
}

# "busy total" jiffies of CPU 0 and CPU 1 (busy: all but idle and iowait).
cpu_snap() {
    awk '/^cpu[01] / {b = $2 + $3 + $4 + $7 + $8 + $9; printf "%d %d ", b, b + $5 + $6}' /proc/stat
}

hz=$(getconf CLK_TCK)
nstart=0
echo "# vs-nginx: ${dur}s x $rounds rounds (+${warm}s warm-up), server on CPU 0, wrk -t1 on CPU 1"
echo "# nginx: $("$nginx_bin" -v 2>&1 | sed 's/.*: //'), one worker; wrk: $(wrk -v 2>&1 | head -n1 | awk '{print $2}')"
results=$tmp/results # conc spec rps cpu_us_per_req errors
: >"$results"
for c in $conns; do
    wt=1
    for r in $(seq "$rounds"); do
        for spec in nginx $models; do
            start_server "$spec"
            url=http://127.0.0.1:$port/
            if [ "$warm" != 0 ]; then
                taskset -c 1 wrk -t$wt -c"$c" -d"${warm}s" "$url" >/dev/null 2>&1 || true
            fi
            t0=$(cpu_ticks "$srv_pid")
            s0=$(cpu_snap)
            taskset -c 1 wrk -t$wt -c"$c" -d"${dur}s" "$url" >"$tmp/wrk" 2>&1 || true
            s1=$(cpu_snap)
            t1=$(cpu_ticks "$srv_pid")
            stop_server
            reqs=$(awk '/requests in/ {print $1}' "$tmp/wrk")
            rps=$(awk '/^Requests\/sec:/ {print $2}' "$tmp/wrk")
            errs=$(awk '/Socket errors:/ {gsub(",", ""); n += $4 + $6 + $8 + $10}
                        /Non-2xx or 3xx/ {n += $NF} END {print n + 0}' "$tmp/wrk")
            if [ -z "$rps" ] || [ -z "$reqs" ] || [ "$reqs" = 0 ]; then
                echo "# $spec -c $c round $r: wrk gave no result: $(tr '\n' ' ' <"$tmp/wrk")" >&2
                rps=0 reqs=0
            fi
            us=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$reqs" \
                'BEGIN {printf "%.2f", n ? d * 1e6 / hz / n : 0}')
            # shellcheck disable=SC2086
            busy=$(echo $s0 $s1 | awk '{
                printf "%.0f %.0f", ($6 - $2) ? 100 * ($5 - $1) / ($6 - $2) : 0,
                                    ($8 - $4) ? 100 * ($7 - $3) / ($8 - $4) : 0 }')
            echo "$c $spec $rps $us $errs $busy" >>"$results"
            printf '# round %d  -c %-5s %-24s %10.0f req/s  %6s us/req  %s errors  cpu0/cpu1 busy %s%%\n' \
                "$r" "$c" "$spec" "$rps" "$us" "$errs" "${busy/ /%\/}" >&2
        done
    done
done

# The table: medians over the rounds, ratio to nginx's median.
echo
w=$(awk '{ if (length($2) > w) w = length($2) } END { print w }' "$results")
printf "%-6s %-${w}s %10s %21s %8s %10s %6s %6s %8s\n" conns server "req/s" "(min-max)" "x nginx" \
    "cpu us/req" "cpu0%" "cpu1%" errors
awk -v w="$w" '
function median(s,   a, n, i, j, t) {
    n = split(s, a, " ")
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function minmax(s, which,   a, n, i, m) {
    n = split(s, a, " "); m = a[1]
    for (i = 2; i <= n; i++) if ((which && a[i] > m) || (!which && a[i] < m)) m = a[i]
    return m
}
{
    k = $1 SUBSEP $2
    if (!(k in rps)) { order[++no] = k; conc[k] = $1; name[k] = $2 }
    rps[k] = rps[k] " " $3; us[k] = us[k] " " $4; err[k] += $5
    b0[k] = b0[k] " " $6; b1[k] = b1[k] " " $7
}
END {
    for (i = 1; i <= no; i++) {
        k = order[i]; base = median(rps[conc[k] SUBSEP "nginx"])
        m = median(rps[k])
        printf "%-6s %-" w "s %10.0f %10.0f-%-10.0f %8.2f %10.2f %6.0f %6.0f %8d\n", conc[k],
            name[k], m, minmax(rps[k], 0), minmax(rps[k], 1), base ? m / base : 0, median(us[k]),
            median(b0[k]), median(b1[k]), err[k]
    }
}' "$results"
