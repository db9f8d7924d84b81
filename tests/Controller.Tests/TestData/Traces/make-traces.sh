#!/bin/bash
# Makes the small block traces the tests replay, beside this script. Deterministic: the same files
# on every run (the fio log's times excepted, which come from the clock).
#
#   fio-trimwrite.iolog  fio's own iolog (version 3) of 4 KiB random trims and writes over 2 MiB,
#                        recorded with --write_iolog through fio's nbd engine against nbdkit memory
#                        (needs fio and nbdkit): the discard-rich trace
#   blkparse.txt         blkparse's default text output, generated: Q, G, I, D and C events of
#                        reads, writes, discards, a preflush write (FWS), a FUA write (WFS), a flush
#                        (FN), then blkparse's per-CPU summary; only the D events are requests
#   msr.csv              MSR Cambridge CSV, generated (Timestamp in 100 ns ticks, offsets in bytes)
#   spc.csv              SNIA/UMass SPC format, generated (LBA in 512-byte blocks, sizes in bytes)
#
# mqsim_tpcc-small.trace is MQSim's own sample (MIT licence, LICENSE.MQSim beside it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'kill "$kit" 2>/dev/null || true; rm -rf "$work"' EXIT

nbdkit -f -U "$work/kit.sock" memory 64M & kit=$!
for _ in $(seq 50); do [ -S "$work/kit.sock" ] && break; sleep 0.1; done
fio --name=trimwrite --ioengine=nbd --uri="nbd+unix:///?socket=$work/kit.sock" --rw=randtrimwrite \
  --bs=4k --size=2M --randseed=7 --write_iolog="$here/fio-trimwrite.iolog" > /dev/null

python3 - "$here" <<'PY'
import random, sys
here = sys.argv[1]
rng = random.Random(16)

# blkparse: "maj,min cpu seq seconds pid action rwbs sector + count [process]"
lines, seq, t = [], 0, 0.0
def event(action, rwbs, sector=None, count=None, cpu=0):
    global seq
    seq += 1
    extent = f" {sector} + {count}" if sector is not None else ""
    lines.append(f"  8,16   {cpu} {seq:>8} {t:14.9f}  4242  {action} {rwbs:>3}{extent} [db]")
requests = []
for i in range(300):
    kind = rng.choice(["R", "R", "WS", "W", "DS", "FWS", "WFS", "FN"])
    sector = rng.randrange(0, 1 << 21) // 8 * 8
    count = rng.choice([8, 8, 16, 64, 256])
    requests.append((kind, sector, count))
for kind, sector, count in requests:
    t += rng.uniform(0.00001, 0.0004)
    cpu = rng.randrange(2)
    if kind == "FN":
        event("Q", "FN", cpu=cpu); event("D", "FN", cpu=cpu); event("C", "FN", cpu=cpu)
        continue
    event("Q", kind, sector, count, cpu); event("G", kind, sector, count, cpu)
    event("I", kind, sector, count, cpu); event("D", kind, sector, count, cpu)
    event("C", kind, sector, count, cpu)
lines += ["CPU0 (8,16):", " Reads Queued:           0,        0KiB\t Writes Queued:           0,        0KiB",
          "Total (8,16):", "Throughput (R/W): 0KiB/s / 0KiB/s", "Events (8,16): 0 entries", "Skips: 0 forward (0 -   0.0%)"]
open(f"{here}/blkparse.txt", "w").write("\n".join(lines) + "\n")

# MSR Cambridge: Timestamp,Hostname,DiskNumber,Type,Offset,Size,ResponseTime
ticks = 128166372000000000
rows = []
for i in range(400):
    ticks += rng.randrange(100, 20000)
    kind = rng.choice(["Read", "Write", "Write"])
    offset = rng.randrange(0, 1 << 30) // 4096 * 4096
    size = rng.choice([4096, 8192, 65536])
    rows.append(f"{ticks},hm,0,{kind},{offset},{size},{rng.randrange(1000, 90000)}")
open(f"{here}/msr.csv", "w").write("\n".join(rows) + "\n")

# SPC: ASU,LBA,Size,Opcode,Timestamp
rows, t = [], 0.0
for i in range(400):
    t += rng.uniform(0.00005, 0.002)
    rows.append(f"{rng.randrange(3)},{rng.randrange(0, 1 << 20)},{rng.choice([512, 3584, 4096, 16384])},{rng.choice('rrwW')},{t:.6f}")
open(f"{here}/spc.csv", "w").write("\n".join(rows) + "\n")
PY
echo "made: $(cd "$here" && ls fio-trimwrite.iolog blkparse.txt msr.csv spc.csv | tr '\n' ' ')"
