#!/usr/bin/env bash
# Kiln's gateway benchmark: the same load through the model stand-in directly,
# nginx, HAProxy and Kiln, each proxy pinned to one core, wrk on the other.
#
#   bench/gateway.sh [-d SECONDS] [-r ROUNDS] [-c CONNECTIONS] [-k CASES] [-a]
#
# CASES is a comma-separated list of small (a small JSON POST), large (a
# 1 MiB body) and conns200 (the small POST over 200 connections). With -a,
# Kiln runs with credentials and --invoke-auth, and every request (to every
# target) carries a token from `kiln token`, which only Kiln checks.
# Needs nginx, haproxy and wrk (Debian packages); installs them when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=10 ROUNDS=3 CONNS=64 CASES=small,large,conns200 AUTH=
while getopts "d:r:c:k:a" o; do
  case $o in
    d) DURATION=$OPTARG ;; r) ROUNDS=$OPTARG ;; c) CONNS=$OPTARG ;; k) CASES=$OPTARG ;; a) AUTH=1 ;;
    *) echo "usage: $0 [-d SECONDS] [-r ROUNDS] [-c CONNECTIONS] [-k CASES] [-a]" >&2; exit 2 ;;
  esac
done

PROXY_CPU=0 LOAD_CPU=1
PORT_A=19101 PORT_B=19102 PORT_NGINX=19180 PORT_HAPROXY=19181 PORT_KILN=19182

missing=()
for p in nginx haproxy wrk; do command -v $p >/dev/null 2>&1 || [ -x /usr/sbin/$p ] || missing+=($p); done
if ((${#missing[@]})); then
  [ "$(id -u)" = 0 ] || { echo "install ${missing[*]} first" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
export PATH=$PATH:/usr/sbin

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "building kiln and the stand-in" >&2
go build -o "$tmp/kiln" ./cmd/kiln
go build -o "$tmp/standin" ./bench/standin

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

# Two stand-ins, weights 90/10, on the load core.
for port in $PORT_A $PORT_B; do
  GOMAXPROCS=1 PORT=$port taskset -c $LOAD_CPU "$tmp/standin" & pids+=($!)
  wait_port $port
done

cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_max_body_size 8m;
  client_body_buffer_size 2m;
  client_body_temp_path $tmp/nginx-body;
  proxy_temp_path $tmp/nginx-proxy;
  upstream model { server 127.0.0.1:$PORT_A weight=9; server 127.0.0.1:$PORT_B weight=1; keepalive 256; }
  server {
    listen 127.0.0.1:$PORT_NGINX;
    location / { proxy_pass http://model; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
taskset -c $PROXY_CPU nginx -c "$tmp/nginx.conf" -p "$tmp" & pids+=($!)
NGINX_PID=$!

cat >"$tmp/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:$PORT_HAPROXY
  default_backend be
backend be
  http-reuse always
  balance roundrobin
  server a 127.0.0.1:$PORT_A weight 90
  server b 127.0.0.1:$PORT_B weight 10
CONF
taskset -c $PROXY_CPU haproxy -f "$tmp/haproxy.cfg" -db & pids+=($!)
HAPROXY_PID=$!

auth_flags=() token=
if [ -n "$AUTH" ]; then
  # The kiln CLI signs with the key from the environment; wrk and curl get
  # a token minted once Kiln is up.
  export KILN_ACCESS_KEY_ID=KILNBENCH KILN_SECRET_ACCESS_KEY=bench-secret-0123456789
  auth_flags=(--invoke-auth)
fi
GOMAXPROCS=1 taskset -c $PROXY_CPU "$tmp/kiln" serve --addr 127.0.0.1:$PORT_KILN --data-dir "$tmp/kiln-data" --log-level warn "${auth_flags[@]}" & pids+=($!)
KILN_PID=$!
wait_port $PORT_NGINX; wait_port $PORT_HAPROXY; wait_port $PORT_KILN
if [ -n "$AUTH" ]; then
  token=$("$tmp/kiln" token --ttl 2h --server http://127.0.0.1:$PORT_KILN)
fi

cat >"$tmp/kiln.yaml" <<YAML
models:
  - ModelName: standin
    PrimaryContainer: {Image: $tmp/standin}
endpointConfigs:
  - EndpointConfigName: bench
    ProductionVariants:
      - {VariantName: Blue, ModelName: standin, InitialInstanceCount: 1, InitialVariantWeight: 0.9}
      - {VariantName: Green, ModelName: standin, InitialInstanceCount: 1, InitialVariantWeight: 0.1}
endpoints:
  - {EndpointName: bench, EndpointConfigName: bench}
YAML
"$tmp/kiln" apply -f "$tmp/kiln.yaml" --server http://127.0.0.1:$PORT_KILN >&2
for _ in $(seq 200); do
  "$tmp/kiln" get endpoints --server http://127.0.0.1:$PORT_KILN | grep -q InService && break
  sleep 0.1
done
# Kiln's instances inherit its core; move them to the load core like the
# stand-ins of nginx and HAProxy.
for pid in $("$tmp/kiln" describe endpoint bench -o json --server http://127.0.0.1:$PORT_KILN >/dev/null; \
             curl -s ${token:+-H "Authorization: Bearer $token"} http://127.0.0.1:$PORT_KILN/v1/endpoints/bench/instances | grep -o '"PID":[0-9]*' | cut -d: -f2); do
  taskset -a -p -c $LOAD_CPU "$pid" >/dev/null
done

cat >"$tmp/small.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"instances": [[1.0, 2.0, 3.0, 4.0]]}'
wrk.headers["Content-Type"] = "application/json"
LUA
cat >"$tmp/large.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"data":"' .. string.rep("a", 1048576 - 11) .. '"}'
wrk.headers["Content-Type"] = "application/json"
LUA
if [ -n "$token" ]; then
  for f in small large; do echo "wrk.headers[\"Authorization\"] = \"Bearer $token\"" >>"$tmp/$f.lua"; done
fi

url() {
  case $1 in
    direct) echo "http://127.0.0.1:$PORT_A/invocations" ;;
    nginx) echo "http://127.0.0.1:$PORT_NGINX/invocations" ;;
    haproxy) echo "http://127.0.0.1:$PORT_HAPROXY/invocations" ;;
    kiln) echo "http://127.0.0.1:$PORT_KILN/endpoints/bench/invocations" ;;
  esac
}

# to_ms converts wrk's 1.23ms / 456.00us / 1.2s to milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) printf "%.3f", v/1000; else if (v ~ /ms$/) printf "%.3f", v+0; else if (v ~ /s$/) printf "%.3f", v*1000; else print v }'; }

# proxy_pids lists the processes whose CPU time counts for a target: nginx's
# master and worker, HAProxy, Kiln without its model instances.
proxy_pids() {
  case $1 in
    nginx) echo "$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')" ;;
    haproxy) echo "$HAPROXY_PID" ;;
    kiln) echo "$KILN_PID" ;;
  esac
}
# cpu_ticks sums the user and system time of processes, in clock ticks.
cpu_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }
HZ=$(getconf CLK_TCK)

run() { # case target -> "rps p50 p99 cpu_us_per_request"
  local script=small conns=$CONNS
  case $1 in large) script=large; conns=16 ;; conns200) conns=200 ;; esac
  local out pp t0 t1
  pp=$(proxy_pids "$2")
  t0=$(cpu_ticks $pp)
  out=$(taskset -c $LOAD_CPU wrk -t1 -c$conns -d${DURATION}s --latency -s "$tmp/$script.lua" "$(url $2)")
  t1=$(cpu_ticks $pp)
  local rps p50 p99 errs reqs cpu
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  p50=$(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")")
  cpu=$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$reqs" -v p="$pp" 'BEGIN { if (p == "" || n == 0) print "-"; else printf "%.1f", t / hz * 1e6 / n }')
  errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
  [ -z "$errs" ] || echo "  $1 $2: $errs" >&2
  echo "$rps $p50 $p99 $cpu"
}

median() { sort -g | awk '{a[NR]=$1} END { if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2 }'; }

targets=(direct nginx haproxy kiln)
declare -A R
IFS=, read -ra cases <<<"$CASES"
for c in "${cases[@]}"; do
  for target in "${targets[@]}"; do run "$c" "$target" >/dev/null; done # warm-up
  for r in $(seq "$ROUNDS"); do
    for target in "${targets[@]}"; do
      res=$(run "$c" "$target")
      echo "  $c round $r $target: $res" >&2
      R[$c,$target]+="$res"$'\n'
    done
  done
done

echo
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); proxies on core $PROXY_CPU, wrk and stand-ins on core $LOAD_CPU"
echo "medians of $ROUNDS alternating rounds of ${DURATION}s; $CONNS connections (large: 16)"
echo "load average before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)"
[ -z "$AUTH" ] || echo "Kiln with --invoke-auth; every request carries a bearer token"
echo
echo "| case | target | requests/s | p50 ms | p99 ms | proxy CPU µs/request | requests/s vs nginx | p99 vs nginx |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for c in "${cases[@]}"; do
  nginx_rps=$(printf '%s' "${R[$c,nginx]}" | awk '{print $1}' | median)
  nginx_p99=$(printf '%s' "${R[$c,nginx]}" | awk '{print $3}' | median)
  for target in "${targets[@]}"; do
    rows=$(printf '%s' "${R[$c,$target]}")
    rps=$(awk '{print $1}' <<<"$rows" | median)
    p50=$(awk '{print $2}' <<<"$rows" | median)
    p99=$(awk '{print $3}' <<<"$rows" | median)
    cpu=-
    [ "$target" = direct ] || cpu=$(awk '{print $4}' <<<"$rows" | median)
    ratio=$(awk -v a="$rps" -v b="$nginx_rps" 'BEGIN { if (b > 0) printf "%.2f", a/b; else print "-" }')
    p99ratio=$(awk -v a="$p99" -v b="$nginx_p99" 'BEGIN { if (b > 0) printf "%.2f", a/b; else print "-" }')
    printf '| %s | %s | %.0f | %s | %s | %s | %s | %s |\n' "$c" "$target" "$rps" "$p50" "$p99" "$cpu" "$ratio" "$p99ratio"
  done
done
