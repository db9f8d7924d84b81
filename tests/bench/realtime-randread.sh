#!/bin/bash
# serve in real time (timing.mode=realtime): 4 KiB random reads that miss the cache, at queue
# depth 1 and 16, with fio's nbd engine. Each read waits for the emulated flash in wall time, so
# the ratio of the two says whether commands are in flight together over the dies.
#
#   dotnet build emulator/Controller.Emulator -c Release
#   tests/bench/realtime-randread.sh [WORKDIR] [--set KEY=VALUE ...]
#
# Needs fio (nbd engine) and python3.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$(mktemp -d)}
shift || true
mkdir -p "$work"
emulator=$repo/emulator/Controller.Emulator/bin/Release/net10.0/ssd-emulator.dll
[ -f "$emulator" ] || { echo "build first: dotnet build emulator/Controller.Emulator -c Release" >&2; exit 2; }
for tool in fio python3; do
  command -v $tool > /dev/null || { echo "$tool is missing (packages: fio python3)" >&2; exit 2; }
done
rm -f "$work"/*.sock "$work"/rt-*.json
dotnet "$emulator" serve --listen "nbd+unix:///?socket=$work/rt.sock" \
  --set timing.mode=realtime --set cache.bytes=1M --set cache.largePageBytes=16k "$@" > "$work/rt.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2> /dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$work/rt.sock" ] && break; sleep 0.1; done
uri="nbd+unix:///ssd?socket=$work/rt.sock"
echo "writing the 256 MiB region the reads cover" >&2
fio --name=fill --ioengine=nbd --uri="$uri" --rw=write --bs=1M --iodepth=4 --size=256M > /dev/null
for depth in 1 16; do
  echo "4 KiB random reads at QD$depth, 10 s" >&2
  fio --name=randread$depth --ioengine=nbd --uri="$uri" --rw=randread --bs=4k --iodepth=$depth --size=256M \
    --runtime=10 --time_based --output-format=json | sed -n '/^{/,$p' > "$work/rt-qd$depth.json"
done
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
r = {}
for d in (1, 16):
    j = json.load(open(f"{w}/rt-qd{d}.json"))["jobs"][0]["read"]
    r[d] = (j["iops"], j["clat_ns"]["percentile"]["50.000000"] / 1000, j["clat_ns"]["percentile"]["99.000000"] / 1000)
    print(f"| QD{d} | {r[d][0]:.0f} IOPS | p50 {r[d][1]:.0f} us | p99 {r[d][2]:.0f} us |")
print(f"QD16 / QD1 = {r[16][0] / r[1][0]:.2f}")
PY
