#!/bin/sh
# Builds dist/vfio-exporter: one executable holding Node.js and the exporter (Node's single executable
# applications, https://nodejs.org/docs/latest-v20.x/api/single-executable-applications.html).
# Usage: build-sea.sh [out-dir]  (default dist: dist/vfio-exporter; another directory lets tests build their own)
set -eu
cd "$(dirname "$0")/.."
out="${1:-dist}"
revision="${VFIO_EXPORTER_REVISION:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}"
rm -rf "$out/sea" "$out/vfio-exporter"
mkdir -p "$out/sea"
# One CommonJS file (SEA runs CommonJS only, and its require() sees built-in modules only);
# package.json is inlined, and the revision is fixed at build time.
npx esbuild src/main.ts --bundle --platform=node --target=node20 --format=cjs --log-level=warning --minify --keep-names \
  --inject:packaging/import-meta-url.js --define:import.meta.url=importMetaUrl \
  --define:process.env.VFIO_EXPORTER_REVISION="\"$revision\"" \
  --metafile="$out/sea/meta.json" --outfile="$out/sea/vfio-exporter.cjs"
# The shipped settings, with the blob's paths under out-dir.
node -e 'const [from, to, out] = process.argv.slice(1); const config = JSON.parse(require("fs").readFileSync(from, "utf8"));
  require("fs").writeFileSync(to, JSON.stringify({ ...config, main: `${out}/sea/vfio-exporter.cjs`, output: `${out}/sea/vfio-exporter.blob` }));' \
  packaging/sea-config.json "$out/sea/sea-config.json" "$out"
node --experimental-sea-config "$out/sea/sea-config.json"
cp "$(node -p process.execPath)" "$out/vfio-exporter"
chmod 0755 "$out/vfio-exporter"
# Symbols and debug info are of no use in a shipped binary (a sixth of its size); strip before injecting.
strip --strip-all --remove-section=.comment "$out/vfio-exporter"
# postject warns about unnamed ELF note sections of the node binary; only its failure matters.
npx postject "$out/vfio-exporter" NODE_SEA_BLOB "$out/sea/vfio-exporter.blob" \
  --sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2 >"$out/sea/postject.log" 2>&1 || { cat "$out/sea/postject.log" >&2; exit 1; }
echo "built $out/vfio-exporter (revision $revision)"
