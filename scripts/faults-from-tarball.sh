#!/usr/bin/env bash
# Fault scenarios (default: broker-of-three-killed) against the packed package, as an application gets it: `npm pack`
# the library, install the tarball with plain kafkajs and the Nest peers from the npm cache into a scratch app
# (.cache/faults-app, inside the checkout so the runner still finds the broker launcher and docs), compile the fault
# suite into that app, check that its workers resolve `nest-kafka-groups` to the installed tarball and not to this
# repository's workspace, and run the scenarios there. Ports as the fault suite's (FAULTS_CLUSTER_PORT, ...).
#   bash scripts/faults-from-tarball.sh [scenario ...]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
APP=$REPO/.cache/faults-app
NPM_FLAGS=(--prefer-offline --no-audit --no-fund --loglevel=error)

rm -rf "$APP"
mkdir -p "$APP"
npm run build -w nest-kafka-groups >/dev/null
tarball=$(npm pack -w nest-kafka-groups --ignore-scripts --pack-destination "$APP" --json |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s.slice(s.indexOf("[")))[0].filename))')

version() { node -p "require('$REPO/node_modules/$1/package.json').version"; }
cat >"$APP/package.json" <<EOF
{
  "name": "faults-app",
  "private": true,
  "type": "module",
  "dependencies": {
    "nest-kafka-groups": "file:./$tarball",
    "@nestjs/common": "$(version @nestjs/common)",
    "@nestjs/core": "$(version @nestjs/core)",
    "@nestjs/microservices": "$(version @nestjs/microservices)",
    "@nestjs/platform-express": "$(version @nestjs/platform-express)",
    "class-transformer": "$(version class-transformer)",
    "class-validator": "$(version class-validator)",
    "reflect-metadata": "$(version reflect-metadata)",
    "rxjs": "$(version rxjs)"
  }
}
EOF
(cd "$APP" && npm install "${NPM_FLAGS[@]}")

npx tsc -p test/faults/tsconfig.json --outDir "$APP/dist-faults"
faults="$APP/dist-faults/test/faults"
resolved=$(cd "$faults" && node --input-type=module -e \
  "import { realpathSync } from 'node:fs'; import { fileURLToPath } from 'node:url';
   console.log(realpathSync(fileURLToPath(import.meta.resolve('nest-kafka-groups'))))")
case "$resolved" in
  "$APP"/node_modules/nest-kafka-groups/*) echo "[faults-from-tarball] workers load $resolved ($tarball)" ;;
  *) echo "[faults-from-tarball] workers would load $resolved, not the installed tarball" >&2; exit 1 ;;
esac
if [ -e "$APP/node_modules/nest-kafka-groups/src" ]; then
  echo "[faults-from-tarball] the installed package holds sources" >&2
  exit 1
fi

if [ "$#" -eq 0 ]; then set -- broker-of-three-killed; fi
node "$faults/run-faults.js" "$@"
