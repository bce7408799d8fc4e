#!/usr/bin/env bash
# The platform's main job on a fresh machine: install what is missing, build, bring the platform up (RabbitMQ,
# Azurite, the three services, the Aspire dashboard), then on the shipped IFCB sample: upload it, compute its
# normalisation statistics, train a small model, register it and point the alias "production" at it.
# The platform keeps running afterwards; Ctrl+C stops every process this script started.
#
#   IFCB_DEMO=0 ./run.sh    bring the platform up without the demo
#   IFCB_EXIT=1 ./run.sh    stop the platform after the demo (a smoke test of this script)
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
cd "$root"

build/prerequisites.sh

echo "==> dotnet build"
dotnet build Ifcb.sln --no-restore --nologo -clp:ErrorsOnly

mkdir -p .state
chmod 700 .state
for secret in api-key dashboard-token; do
  if [[ ! -s .state/$secret ]]; then
    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > ".state/$secret")
  fi
done
export IFCB_API_KEY=$(cat .state/api-key)
export IFCB_SERVER=http://localhost:5101
dashboard=http://localhost:15080
# The dashboard shows every resource's logs, traces and settings, so it asks for this token (kept in .state/, like
# the API key); the login URL below sets a cookie in the browser that opens it.
dashboard_login="$dashboard/login?t=$(cat .state/dashboard-token)"
ifcb() { dotnet "$root/tools/Ifcb.Cli/bin/Debug/net10.0/linux-x64/ifcb.dll" "$@"; }

echo "==> starting the platform (log: .state/apphost.log)"
env "Parameters__api-key=$IFCB_API_KEY" "ASPIRE_DASHBOARD_FRONTEND_BROWSERTOKEN=$(cat .state/dashboard-token)" \
  dotnet run --project Ifcb.AppHost --no-build --launch-profile http > .state/apphost.log 2>&1 &
apphost=$!
stop() {
  trap - INT TERM EXIT
  if kill -0 "$apphost" 2>/dev/null; then
    echo "==> stopping the platform"
    kill -TERM "$apphost" 2>/dev/null || true
    wait "$apphost" 2>/dev/null || true
  fi
}
trap stop INT TERM EXIT

echo -n "==> waiting for the services"
for _ in $(seq 1 300); do
  if ifcb status > /dev/null 2>&1; then break; fi
  kill -0 "$apphost" 2>/dev/null || { echo; echo "the AppHost exited; see .state/apphost.log" >&2; exit 1; }
  echo -n "."
  sleep 2
done
echo
ifcb status
echo "==> dashboard: $dashboard_login"

if [[ "${IFCB_DEMO:-1}" != "0" ]]; then
  train_id=demo-$(date -u +%Y%m%dT%H%M%S)
  echo "==> uploading the IFCB sample (testdata/training-sample) as dataset 'ifcb-sample'"
  ifcb dataset upload testdata/training-sample --name ifcb-sample
  echo "==> normalisation statistics (NormStats service)"
  ifcb norm ifcb-sample --resize 64
  echo "==> training $train_id: resnet18 from random weights at 64x64, img-norm auto (Training service)"
  ifcb train ifcb-sample resnet18 "$train_id" --untrain --img-norm auto --resize 64 --batch 8 --emax 8 --emin 3 --estop 3 \
    --seed 1 --register plankton-demo --outdir "demo-output/$train_id"
  echo -n "==> waiting for the registry"
  version=""
  for _ in $(seq 1 60); do
    # The registry tags each auto-registered version with its training id.
    version=$(ifcb models versions plankton-demo --tag "train_id=$train_id" --status ready --json 2>/dev/null \
      | tr -d ' \n' | grep -o '"version":[0-9]*' | head -1 | grep -o '[0-9]*$' || true)
    [[ -n "$version" ]] && break
    echo -n "."
    sleep 1
  done
  echo
  ifcb models alias plankton-demo production "$version"
  cat <<SUMMARY

  Dashboard:           $dashboard_login
  Registered model:    plankton-demo version $version (alias plankton-demo@production)
  Training outputs:    $root/demo-output/$train_id  (epochs.csv, results.json, $train_id.ifcbmodel)
  Plots:               $root/demo-output/$train_id/{loss_curves,f1_curves,confusion_matrix}.png

  Next: export IFCB_SERVER=$IFCB_SERVER IFCB_API_KEY=\$(cat .state/api-key); dotnet tools/Ifcb.Cli/bin/Debug/net10.0/linux-x64/ifcb.dll --help
SUMMARY
fi

if [[ "${IFCB_EXIT:-0}" == "1" ]]; then
  exit 0
fi
echo "==> the platform is running: $dashboard_login  (Ctrl+C to stop)"
wait "$apphost"
