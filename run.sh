#!/usr/bin/env bash
# Brings the platform up: installs what is missing, builds, starts Ifcb.AppHost (RabbitMQ, Azurite, the three
# services) and prints the dashboard URL. Ctrl+C stops everything.
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
cd "$root"

build/prerequisites.sh

echo "==> dotnet build"
dotnet build Ifcb.sln --no-restore --nologo -clp:ErrorsOnly

echo "==> starting the platform (dashboard: http://localhost:15080)"
exec dotnet run --project Ifcb.AppHost --no-build --launch-profile http
