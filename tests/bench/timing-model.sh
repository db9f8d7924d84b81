#!/bin/bash
# The sim's virtual-time figures on the default profile beside the analytic model of
# docs/ARCHITECTURE.md ("The analytic model of the default profile"): 4 KiB random reads that miss
# the cache at queue depths 1, 4, 16 and 32 (tR 50 us, and again with tR 2 ms), and sequential
# 128 KiB writes on a fresh device (with the FTL's checkpoints, and without them). Virtual time
# is deterministic: the figures are the same on every machine.
#
#   dotnet build emulator/Controller.Emulator -c Release
#   tests/bench/timing-model.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
emulator=$repo/emulator/Controller.Emulator/bin/Release/net10.0/ssd-emulator.dll
[ -f "$emulator" ] || { echo "build first: dotnet build emulator/Controller.Emulator -c Release" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A 1 MiB cache of 16 KiB large pages: every read misses and fills one NAND page, as in MQSim.
reads="--workload uniform-randread --set cache.bytes=1M --set cache.largePageBytes=16k --ops 20000"
for tr in 50 2000; do
  for depth in 1 4 16 32; do
    dotnet "$emulator" sim $reads --set timing.readMicroseconds=$tr --queue-depth $depth --json "$work/read-$tr-$depth.json" > /dev/null
  done
done
writes="--workload sequential --read-fraction 0 --flush-every 0 --set cache.bytes=1M --ops 4000"
dotnet "$emulator" sim $writes --json "$work/write.json" > /dev/null
dotnet "$emulator" sim $writes --set ftl.checkpointIntervalPages=16777216 --json "$work/write-nockpt.json" > /dev/null
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
run = lambda name: json.load(open(f"{w}/{name}.json"))["runs"][0]
K = 8
transfer = (16384 + 1872) / 800e6 * 1e6  # a page and its spare area on an 800 MB/s channel
print("| tR | queue depth | model IOPS | sim IOPS | sim/model | read p50 us | read mean us | read p99 us |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
for tr in (50, 2000):
    s = tr + transfer
    for n in (1, 4, 16, 32):
        r = run(f"read-{tr}-{n}")
        lat = r["operations"]["read"]["latencyMicroseconds"]
        model = K * n / (n + K - 1) / s * 1e6
        print(f"| {tr} us | {n} | {model:,.0f} | {r['iops']:,.0f} | {r['iops'] / model:.2f} | {lat['p50']:.1f} | {lat['mean']:.1f} | {lat['p99']:.1f} |")
print()
print("| sequential 128 KiB writes, fresh device | model MB/s | sim MB/s | sim/model |")
print("|---|---:|---:|---:|")
program = K * 16384 / ((600 + transfer) * 1e-6) / 1e6
for name, label, model in (("write-nockpt", "program-bound, no checkpoints", program), ("write", "with the FTL's checkpoints (every 4096 pages)", program / 1.11)):
    r = run(name)
    mbs = r["iops"] * 131072 / 1e6
    print(f"| {label} | {model:.0f} | {mbs:.1f} | {mbs / model:.2f} |")
PY
