#!/bin/bash
# ssdhost bench beside fio's nbd engine: the same server (serve, default profile), the same jobs,
# one after the other in one run. Prints a table of IOPS and the ratio.
#
#   dotnet build emulator/Controller.Emulator -c Release && dotnet build host/Controller.Host -c Release
#   tests/bench/ssdhost-vs-fio.sh [WORKDIR]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"; rm -f "$work"/*.sock "$work"/*.json
emulator=$repo/emulator/Controller.Emulator/bin/Release/net10.0/ssd-emulator.dll
host=$repo/host/Controller.Host/bin/Release/net10.0/ssdhost.dll
dotnet "$emulator" serve --listen "nbd+unix:///?socket=$work/ssd.sock" > "$work/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$work/ssd.sock" ] && break; sleep 0.1; done
uri="nbd+unix:///ssd?socket=$work/ssd.sock"
# Warm-up: the 512 MiB region written three times (the NAND's memory touched, the JIT settled).
for pass in 1 2 3; do fio --name=warmup --ioengine=nbd --uri="$uri" --rw=write --bs=1M --iodepth=1 --size=512M > /dev/null; done

sleep 5  # let background garbage collection after the warm-up finish

# Each job runs fio, ssdhost three times in turn (5 s each): the server's state drifts (background
# GC, the cache) and this machine is noisy (fio alone swings 20% between runs), so the two tools
# take turns and each figure is the median of the tool's three runs.
jobs=("read 1M 1" "write 1M 1" "randread 4k 16" "randwrite 4k 16" "randread 4k 1" "randwrite 4k 1")
echo "| job | fio | ssdhost bench | ratio |"
echo "|---|---|---|---|"
for job in "${jobs[@]}"; do
  set -- $job
  for turn in 1 2 3; do
    fio --name=job --ioengine=nbd --uri="$uri" --rw=$1 --bs=$2 --iodepth=$3 --size=512M --runtime=5 --time_based --output-format=json | sed -n '/^{/,$p' > "$work/fio$turn.json"
    dotnet "$host" bench "$uri" --rw $1 --bs $2 --iodepth $3 --size 512M --duration 5s --json 2> "$work/ssdhost.err" > "$work/ssdhost$turn.json"
  done
  python3 - "$work" "$1 bs=$2 iodepth=$3" <<'PY'
import json, sys
w, name = sys.argv[1], sys.argv[2]
side = "read" if "read" in name.split()[0] else "write"
fio = [json.load(open(f"{w}/fio{t}.json"))["jobs"][0][side] for t in (1, 2, 3)]
ours = [json.load(open(f"{w}/ssdhost{t}.json")) for t in (1, 2, 3)]
median = lambda xs: sorted(xs)[1]
fio_iops = median([f["iops"] for f in fio])
fio_p50 = median([f["clat_ns"]["percentile"]["50.000000"] / 1000 for f in fio])
our_iops = median([s["iops"] for s in ours])
our_p50 = median([s["latencyMicroseconds"]["p50"] for s in ours])
print(f"| {name} | {fio_iops:.0f} IOPS (p50 {fio_p50:.0f} us) | {our_iops:.0f} IOPS (p50 {our_p50:.0f} us) | {our_iops/fio_iops:.2f} |")
PY
done
