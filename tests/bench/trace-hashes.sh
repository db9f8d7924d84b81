#!/bin/bash
# The trace hashes of a fixed set of sim runs, to check that a change meant to keep behaviour
# (a refactoring) kept it: one seed is one execution, so the same firmware gives the same hashes
# on every machine. The runs cover every workload, queue depths, an open-loop arrival rate, dirty
# expiry with idle time, an MQSim trace, and swarms with power cuts and raised fault rates.
#
#   dotnet build emulator/Controller.Emulator -c Release
#   tests/bench/trace-hashes.sh > after.txt; diff tests/bench/trace-hashes.expected after.txt
#
# trace-hashes.expected holds the output at the commit that last changed behaviour on purpose;
# such a commit says so and updates the file.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
emulator=$repo/emulator/Controller.Emulator/bin/Release/net10.0/ssd-emulator.dll
[ -f "$emulator" ] || { echo "build first: dotnet build emulator/Controller.Emulator -c Release" >&2; exit 2; }
run() {
  echo "== $*"
  dotnet "$emulator" sim "$@" 2>/dev/null | grep -o 'seed=[0-9]* .*trace-hash=[0-9a-f]*\|violations=[0-9]*' | sed 's/ ops\/s=[0-9.]*//'
}
run --config tiny --seed 1
run --config tiny --seed 2 --workload mixed --power-cuts 4
run --config tiny --seeds 1..6 --swarm --power-cuts 3 --jobs 1
run --config tiny --seed 3 --workload fs --queue-depth 8
run --config tiny --seed 4 --workload sequential-trim --power-cuts 2
run --config tiny --seed 5 --workload hot-cold --set cache.dirtyExpireMilliseconds=200 --idle-us 5000
run --config tiny --seeds 7..10 --swarm --power-cuts 2 --jobs 1
run --config tiny --seed 6 --workload db --arrival-rate 20000
run --seed 1 --ops 20000
run --config tiny --seed 8 --trace-file "$repo/tests/Controller.Tests/TestData/Traces/mqsim_tpcc-small.trace" --trace-format mqsim --power-cuts 2
run --config tiny --seeds 20..23 --swarm --power-cuts 4 --jobs 1 --set faults.rawBitErrorRate=0.00002 \
  --set faults.programFailProbability=0.001 --set faults.eraseFailProbability=0.002
