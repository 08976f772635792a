#!/bin/sh
# Builds dist/vfio-exporter_<version>-1_<arch>.deb around dist/vfio-exporter (npm run package).
# DEBFULLNAME and DEBEMAIL name the maintainer, as Debian's tools take them.
set -eu
cd "$(dirname "$0")/.."
[ -x dist/vfio-exporter ] && [ -f dist/sea/meta.json ] || { echo "dist/vfio-exporter is missing: run npm run package first" >&2; exit 1; }
version="$(node -p "require('./package.json').version")-1"
arch="$(dpkg --print-architecture)"
maintainer="${DEBFULLNAME:-vfio-exporter maintainers} <${DEBEMAIL:-vfio-exporter@example.org}>"
root=dist/deb/root
rm -rf dist/deb dist/vfio-exporter_*.deb
mkdir -p "$root/DEBIAN"

install -D -m 0755 dist/vfio-exporter "$root/usr/bin/vfio-exporter"
install -D -m 0644 packaging/vfio-exporter.service "$root/lib/systemd/system/vfio-exporter.service"
install -D -m 0644 packaging/debian/default "$root/etc/default/vfio-exporter"
install -D -m 0644 packaging/debian/lintian-overrides "$root/usr/share/lintian/overrides/vfio-exporter"
mkdir -p "$root/usr/share/doc/vfio-exporter" "$root/usr/share/man/man1"
node packaging/bundled-licenses.mjs dist/sea/meta.json > dist/deb/bundled.txt
awk 'FNR == NR { bundled = bundled $0 "\n"; next } /^@BUNDLED@$/ { printf "%s", bundled; next } { print }' \
  dist/deb/bundled.txt packaging/debian/copyright > "$root/usr/share/doc/vfio-exporter/copyright"
# Reproducible: the changelog date is the last commit's, and gzip stores no name or time.
date="$(date -R -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")"
sed -e "s/@VERSION@/$version/" -e "s/@MAINTAINER@/$maintainer/" -e "s/@DATE@/$date/" packaging/debian/changelog \
  | gzip -9n > "$root/usr/share/doc/vfio-exporter/changelog.Debian.gz"
gzip -9n < packaging/vfio-exporter.1 > "$root/usr/share/man/man1/vfio-exporter.1.gz"
chmod 0644 "$root/usr/share/doc/vfio-exporter/"* "$root/usr/share/man/man1/vfio-exporter.1.gz"

for script in postinst prerm postrm; do install -m 0755 "packaging/debian/$script" "$root/DEBIAN/$script"; done
install -m 0644 packaging/debian/conffiles "$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print0 | sort -z | xargs -0 md5sum | sed 's# \./# #') > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"
installed_size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@MAINTAINER@/$maintainer/" -e "s/@INSTALLED_SIZE@/$installed_size/" \
  packaging/debian/control > "$root/DEBIAN/control"

# gzip: xz would spend most of a minute on the 90 MB executable for a few MB less.
dpkg-deb --root-owner-group -Zgzip --build "$root" "dist/vfio-exporter_${version}_${arch}.deb" >/dev/null
echo "built dist/vfio-exporter_${version}_${arch}.deb"
