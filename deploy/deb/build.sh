#!/usr/bin/env bash
# make deb: a Debian package from the release binary, built with Debian's own dpkg-deb.
#   deploy/deb/build.sh VERSION BINARY MANDIR   →   .build-deb/smarthost_VERSION_ARCH.deb
# The tree is what `make install PREFIX=/usr DESTDIR=…` lays out; dependencies come from
# dpkg-shlibdeps on the binary (only Debian's libraries: the Swift runtime is linked in).
set -euo pipefail
cd "$(dirname "$0")/../.."
version=$1 bin=$2 mandir=$3
arch=$(dpkg --print-architecture)
out=.build-deb
stage=$out/stage
rm -rf "$stage" && mkdir -p "$stage/DEBIAN"

make --no-print-directory install DESTDIR="$stage" PREFIX=/usr BIN="$bin" MAN_DIR="$mandir" >/dev/null
# Debian's layout: the package owns the example and its conffile; compressed man pages.
gzip -9n "$stage"/usr/share/man/man*/*.[0-9]
install -D -m 0644 deploy/deb/copyright "$stage/usr/share/doc/smarthost/copyright"
rm -f "$stage/etc/smarthost/smarthost.yaml.example"
install -D -m 0644 deploy/smarthost.yaml.example "$stage/usr/share/doc/smarthost/examples/smarthost.yaml"
# The config is a conffile (an operator's edits survive upgrades); tmpfiles.d makes it
# root:smarthost 0640 at configure time, once the account exists.
echo /etc/smarthost/smarthost.yaml > "$stage/DEBIAN/conffiles"
for script in postinst prerm postrm; do install -m 0755 "deploy/deb/$script" "$stage/DEBIAN/$script"; done

# dpkg-shlibdeps wants a debian/control beside it; give it a throwaway one.
work=$(mktemp -d) && trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debian" && printf 'Source: smarthost\n\nPackage: smarthost\nArchitecture: any\n' > "$work/debian/control"
depends=$(cd "$work" && dpkg-shlibdeps -O "$OLDPWD/$stage/usr/bin/smarthost" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "build.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@DEPENDS@/$depends/" -e "s/@SIZE@/$size/" \
    deploy/deb/control.in > "$stage/DEBIAN/control"

deb="$out/smarthost_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
