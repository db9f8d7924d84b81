#!/bin/bash
# The emulated SSD (serve, default profile, timing.mode none) beside nbdkit's memory plugin, with
# the same clients, sizes and transport (a Unix socket), in one run. Prints a table of ratios.
#
#   dotnet build emulator/Controller.Emulator -c Release
#   tests/bench/nbd-vs-nbdkit.sh [WORKDIR]
#
# Needs fio (nbd engine), nbdcopy and nbdinfo (libnbd-bin), nbdkit and python3.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
emulator=$repo/emulator/Controller.Emulator/bin/Release/net10.0/ssd-emulator.dll
[ -f "$emulator" ] || { echo "build first: dotnet build emulator/Controller.Emulator -c Release" >&2; exit 2; }
for tool in fio nbdcopy nbdkit python3; do
  command -v $tool > /dev/null || { echo "$tool is missing (packages: fio libnbd-bin nbdkit python3)" >&2; exit 2; }
done
rm -f "$work"/*.sock "$work"/*.json "$work"/*-warmup.log
head -c 268435456 /dev/urandom > "$work/random.bin"

start() { # start NAME: serve or nbdkit on $work/NAME.sock, wait until it accepts
  case $1 in
    ssd) dotnet "$emulator" serve --listen "nbd+unix:///?socket=$work/ssd.sock" > "$work/ssd.log" 2>&1 & ;;
    kit) nbdkit -f -U "$work/kit.sock" memory 1G > "$work/kit.log" 2>&1 & ;;
  esac
  pid=$!
  for _ in $(seq 100); do [ -S "$work/$1.sock" ] && return; sleep 0.1; done
  echo "$1 did not start" >&2; cat "$work/$1.log" >&2; exit 1
}

for target in ssd kit; do
  start $target
  uri="nbd+unix:///?socket=$work/$target.sock"
  [ $target = ssd ] && uri="nbd+unix:///ssd?socket=$work/ssd.sock"
  # Warm-up, the same for both: the 512 MiB region is written three times and read once. The
  # emulated NAND takes its memory from the OS block by block as the FTL's log first reaches each
  # block (page faults, zeroing); three passes reach every block of the 1 GiB array. Cold numbers
  # (a fresh process, the first pass) are in the first fio line of each target's log.
  echo "$target: warm-up (512 MiB written three times and read once)" >&2
  for pass in 1 2 3; do
    fio --name=warmup$pass --ioengine=nbd --uri="$uri" --rw=write --bs=1M --iodepth=1 --size=512M | grep -E "WRITE:" >> "$work/$target-warmup.log"
  done
  fio --name=warmup --ioengine=nbd --uri="$uri" --rw=read --bs=1M --iodepth=1 --size=512M | grep -E "READ:" >> "$work/$target-warmup.log"
  echo "$target: fio sequential 1 MiB writes, sequential 1 MiB reads, 4 KiB random writes at QD16" >&2
  fio --name=seqwrite --ioengine=nbd --uri="$uri" --rw=write --bs=1M --iodepth=1 --size=512M --output-format=json | sed -n '/^{/,$p' > "$work/$target-seqwrite.json"
  fio --name=seqread --ioengine=nbd --uri="$uri" --rw=read --bs=1M --iodepth=1 --size=512M --output-format=json | sed -n '/^{/,$p' > "$work/$target-seqread.json"
  fio --name=randwrite --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --iodepth=16 --size=512M --runtime=15 --time_based --output-format=json | sed -n '/^{/,$p' > "$work/$target-randwrite.json"
  echo "$target: nbdcopy 256 MiB in, the whole device out" >&2
  t0=$(date +%s.%N); nbdcopy "$work/random.bin" "$uri"; t1=$(date +%s.%N)
  nbdcopy "$uri" null:; t2=$(date +%s.%N)
  # The data came back: the first 256 MiB (head stops nbdcopy with SIGPIPE).
  { nbdcopy "$uri" - || true; } | head -c 268435456 | cmp - "$work/random.bin"
  python3 -c "import json,sys; print(json.dumps({'in': $t1 - $t0, 'out': $t2 - $t1, 'size': int(sys.argv[1])}))" "$(nbdinfo --size "$uri")" > "$work/$target-nbdcopy.json"
  kill -TERM $pid; wait $pid || true
done

python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
def fio(t, j, k):
    d = json.load(open(f"{w}/{t}-{j}.json"))["jobs"][0][k]
    return d["bw_bytes"] / 2**20, d["iops"], d["clat_ns"]["percentile"]["50.000000"] / 1000, d["clat_ns"]["percentile"]["99.000000"] / 1000
print("| job | serve | nbdkit memory | ratio |")
print("|---|---|---|---|")
for j, k, unit in (("seqwrite", "write", "MiB/s"), ("seqread", "read", "MiB/s"), ("randwrite", "write", "IOPS")):
    a, b = fio("ssd", j, k), fio("kit", j, k)
    i = 1 if unit == "IOPS" else 0
    print(f"| fio {j} | {a[i]:.0f} {unit} (p50 {a[2]:.0f} us, p99 {a[3]:.0f} us) | {b[i]:.0f} {unit} (p50 {b[2]:.0f} us, p99 {b[3]:.0f} us) | {a[i]/b[i]:.2f} |")
ssd, kit = (json.load(open(f"{w}/{t}-nbdcopy.json")) for t in ("ssd", "kit"))
a, b = 256 / ssd["in"], 256 / kit["in"]
print(f"| nbdcopy 256 MiB file to device | {a:.0f} MiB/s | {b:.0f} MiB/s | {a/b:.2f} |")
a, b = ssd["size"] / 2**20 / ssd["out"], kit["size"] / 2**20 / kit["out"]
print(f"| nbdcopy whole device to null: | {a:.0f} MiB/s ({ssd['size'] >> 20} MiB) | {b:.0f} MiB/s ({kit['size'] >> 20} MiB) | {a/b:.2f} |")
PY
for target in ssd kit; do echo "warm-up passes, $target:"; cat "$work/$target-warmup.log"; done
