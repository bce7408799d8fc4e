#!/usr/bin/env bash
# Runs every test: installs what is missing, builds, runs each test project, checks that no process outlived them.
# Usage: ./test.sh [extra dotnet test arguments, e.g. --filter FullyQualifiedName~Registry]
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
cd "$root"

build/prerequisites.sh --tests

echo "==> dotnet build"
dotnet build Ifcb.sln --no-restore --nologo -clp:ErrorsOnly -p:TreatWarningsAsErrors=true

mkdir -p artifacts/test-results
passed=0; failed=0; skipped=0; status=0
for project in $(find tests -name '*.Tests.csproj' | sort); do
  name=$(basename "$project" .csproj)
  echo "==> $name"
  log=artifacts/test-results/$name.log
  # A test that hangs is killed after 10 minutes (the longest single test takes about one) and fails the run, instead
  # of holding CI until its global limit.
  if ! dotnet test "$project" --no-build --nologo --logger "console;verbosity=normal" \
      --blame-hang-timeout 10m --blame-hang-dump-type none "$@" 2>&1 | tee "$log"; then status=1; fi
  # The console logger's closing block: "Total tests: N" then "Passed: N", "Failed: N", "Skipped: N" (each when non-zero).
  if grep -q "No test matches the given testcase filter" "$log"; then continue; fi
  if ! grep -qE "^Total tests: [0-9]+" "$log"; then echo "no test summary for $name" >&2; status=1; continue; fi
  count() { grep -E "^ +$1: [0-9]+\s*$" "$log" | tail -1 | grep -oE "[0-9]+" || echo 0; }
  p=$(count Passed); f=$(count Failed); s=$(count Skipped)
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
done

# Every broker, epmd, Azurite and service the tests started must be gone (stopping ones get 30 s to exit).
survivors() { ps -eo pid,stat,args | awk '$2 !~ /^Z/' | grep -E "beam\.smp|epmd -port|azurite-blob|Ifcb\.(Training|NormStats|Registry)(\.dll)?( |$)" | grep -v grep || true; }
for _ in $(seq 30); do [[ -z "$(survivors)" ]] && break; sleep 1; done
leaked=$(survivors)
if [[ -n "$leaked" ]]; then
  echo "error: processes outlived the tests:" >&2
  echo "$leaked" >&2
  status=1
  failed=$((failed + 1))
fi

# CI shows only the end of this output: repeat every failure (name, message, start of the stack) and crash here.
for log in artifacts/test-results/*.log; do
  awk -v project="$(basename "$log" .log)" '
    /^  Failed / { shown = 0; keep = 1; print "--- " project ":"; }
    /^  (Passed|Skipped) |^Test Run |^Total tests:/ { keep = 0 }
    /aborted|crashed|hang timeout/ { print "--- " project ": " $0 }
    keep && shown++ < 25 { print }
  ' "$log"
done

echo "Tests: $passed passed, $failed failed, $skipped skipped"
exit $status
