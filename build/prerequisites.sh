#!/usr/bin/env bash
# Installs what the platform needs on a Debian/Ubuntu machine, only where it is missing (idempotent):
#   - RabbitMQ (Debian's rabbitmq-server; run as a local executable by the AppHost, the service is not enabled)
#   - Azurite (npm, pinned in package.json; `npm ci`)
#   - with --tests: Debian's PyTorch/torchvision/numpy/PIL/h5py, the reference implementation the parity tests compare against,
#     python3-onnx, whose checker the ONNX export tests run on every exported file, python3-pandas, with which the pyifcb
#     v4 CSV test reads RUN's output as pyifcb does, and npm's onnxruntime-node, an outside ONNX consumer
#     (tests/Ifcb.Inference.Tests/node)
#   - NuGet packages (`dotnet restore`)
# The .NET 10 SDK itself must already be installed (https://dot.net); Node.js 20+ and npm likewise.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

with_tests=false
[[ "${1:-}" == "--tests" ]] && with_tests=true

need_cmd() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' is required but not installed. $2" >&2; exit 1; }
}
need_cmd dotnet "Install the .NET 10 SDK."
need_cmd node "Install Node.js 20 or newer."
need_cmd npm "Install npm."

sudo_cmd=()
[[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)

apt_packages=(rabbitmq-server fonts-dejavu-core)
$with_tests && apt_packages+=(python3-torch python3-torchvision python3-numpy python3-pil python3-h5py python3-scipy python3-sklearn python3-onnx python3-pandas)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "==> apt-get install ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts the system broker on install where an init system runs; ours are private, so stop it if it did.
if pgrep -f "rabbit.*-sname rabbit@" >/dev/null 2>&1 || pgrep -u rabbitmq beam.smp >/dev/null 2>&1; then
  "${sudo_cmd[@]}" service rabbitmq-server stop >/dev/null 2>&1 || true
fi

if [[ ! -x node_modules/.bin/azurite-blob ]] || ! diff -q <(node -p "require('./node_modules/azurite/package.json').version" 2>/dev/null) <(node -p "require('./package.json').dependencies.azurite") >/dev/null; then
  echo "==> npm ci (Azurite)"
  npm ci --no-audit --no-fund --loglevel=error
fi

# With --tests: ONNX Runtime for Node.js, the outside ONNX consumer of ExternalOnnxConsumerTests. --ignore-scripts: the CPU
# binaries ship in the package; its install script would only download GPU providers from outside the npm registry.
consumer=tests/Ifcb.Inference.Tests/node
if $with_tests && { [[ ! -f $consumer/node_modules/onnxruntime-node/package.json ]] || ! diff -q \
    <(node -p "require('./$consumer/node_modules/onnxruntime-node/package.json').version" 2>/dev/null) \
    <(node -p "require('./$consumer/package.json').dependencies['onnxruntime-node']") >/dev/null; }; then
  echo "==> npm ci (onnxruntime-node, for the ONNX consumer test)"
  npm ci --prefix "$consumer" --ignore-scripts --no-audit --no-fund --loglevel=error
fi

echo "==> dotnet restore"
dotnet restore Ifcb.sln --verbosity quiet
