#!/bin/sh
# Builds dist/vfio-exporter: one executable holding Node.js and the exporter (Node's single executable
# applications, https://nodejs.org/docs/latest-v20.x/api/single-executable-applications.html).
set -eu
cd "$(dirname "$0")/.."
revision="${VFIO_EXPORTER_REVISION:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}"
rm -rf dist/sea dist/vfio-exporter
mkdir -p dist/sea
# One CommonJS file (SEA runs CommonJS only, and its require() sees built-in modules only);
# package.json is inlined, and the revision is fixed at build time.
npx esbuild src/main.ts --bundle --platform=node --target=node20 --format=cjs --log-level=warning --minify --keep-names \
  --inject:packaging/import-meta-url.js --define:import.meta.url=importMetaUrl \
  --define:process.env.VFIO_EXPORTER_REVISION="\"$revision\"" \
  --metafile=dist/sea/meta.json --outfile=dist/sea/vfio-exporter.cjs
node --experimental-sea-config packaging/sea-config.json
cp "$(node -p process.execPath)" dist/vfio-exporter
chmod 0755 dist/vfio-exporter
# Symbols and debug info are of no use in a shipped binary (a sixth of its size); strip before injecting.
strip --strip-all --remove-section=.comment dist/vfio-exporter
# postject warns about unnamed ELF note sections of the node binary; only its failure matters.
npx postject dist/vfio-exporter NODE_SEA_BLOB dist/sea/vfio-exporter.blob \
  --sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2 >dist/sea/postject.log 2>&1 || { cat dist/sea/postject.log >&2; exit 1; }
echo "built dist/vfio-exporter (revision $revision)"
