#!/usr/bin/env bash
# `make deb`: the Debian package dist/exabgp-announcer_VERSION-1_ARCH.deb, built with dpkg-deb
# from this checkout. Inside: a private environment at /opt/announcer (Debian's python3, the
# plugin and ExaBGP 5.0 with the pinned dependencies of deploy/debian/requirements.txt),
# /usr/bin/announcer, the systemd units, sysusers and tmpfiles entries, an example
# configuration (a conffile), the man page and the bash and zsh completions.
# Needs Debian 12's python3 and python3-venv, and PyPI (the dependencies are downloaded).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=/usr/bin/python3  # the interpreter the package depends on, not a developer's own
version=$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
arch=$(dpkg --print-architecture)
name=exabgp-announcer
prefix=/opt/announcer
work=$PWD/build/deb
root=$work/root
rm -rf "$work"
mkdir -p "$root/DEBIAN" dist

# the environment, built where it will live only in name: its paths are rewritten below
"$PYTHON" -m venv "$root$prefix"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
"$root$prefix/bin/pip" install -q --no-compile -r deploy/debian/requirements.txt
"$root$prefix/bin/pip" install -q --no-compile --no-deps .
rm -rf build/lib build/bdist.* ./*.egg-info/SOURCES.txt 2>/dev/null || true
grep -rlI --exclude-dir=site-packages "$root$prefix" "$root$prefix" | xargs -r sed -i "s|$root$prefix|$prefix|g"
find "$root$prefix" -name direct_url.json -delete
find "$root$prefix" -name __pycache__ -type d -prune -exec rm -rf {} +
if grep -rqI "$root" "$root$prefix"; then
    echo "build-deb: the build folder is still named in the environment" >&2
    exit 1
fi

install -d "$root/usr/bin"
ln -s "$prefix/bin/announcer" "$root/usr/bin/announcer"
install -D -m 0644 deploy/systemd/exabgp-announcer.service "$root/lib/systemd/system/exabgp-announcer.service"
install -D -m 0644 deploy/systemd/announcer-bfdd.service "$root/lib/systemd/system/announcer-bfdd.service"
install -D -m 0644 deploy/systemd/announcer.sysusers.conf "$root/usr/lib/sysusers.d/$name.conf"
install -D -m 0644 deploy/debian/tmpfiles.conf "$root/usr/lib/tmpfiles.d/$name.conf"
install -d -m 0750 "$root/etc/announcer" "$root/etc/exabgp"
install -m 0640 deploy/examples/nginx-host.yaml "$root/etc/announcer/announcer.yaml.example"
doc=$root/usr/share/doc/$name
install -d "$doc/examples/systemd"
install -m 0644 deploy/debian/copyright README.md "$doc/"
install -m 0644 deploy/examples/*.yaml "$doc/examples/"
# drop-ins an operator chooses (BFD's binding, CAP_NET_ADMIN for addresses: manage): not active
install -m 0644 deploy/systemd/address-manage.conf deploy/systemd/exabgp-announcer.service.d/bfd.conf "$doc/examples/systemd/"
printf '%s (%s-1) unstable; urgency=medium\n\n  * Built from the checkout.\n\n -- announcer developers <announcer@example.org>  %s\n' \
    "$name" "$version" "$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")" \
    | gzip -9n > "$doc/changelog.Debian.gz"

# the man page and the completions, from the CLI's parser (the project's .venv has the tools)
.venv/bin/python -m announcer.manuals "$work/manuals" 2>/dev/null
install -D -m 0644 "$work/manuals/announcer.1" "$root/usr/share/man/man1/announcer.1"
gzip -9n "$root/usr/share/man/man1/announcer.1"
install -D -m 0644 "$work/manuals/announcer.bash" "$root/usr/share/bash-completion/completions/announcer"
install -D -m 0644 "$work/manuals/_announcer" "$root/usr/share/zsh/vendor-completions/_announcer"

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version-1/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" deploy/debian/control.in > "$root/DEBIAN/control"
echo /etc/announcer/announcer.yaml.example > "$root/DEBIAN/conffiles"
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$root/DEBIAN/"
out=dist/${name}_${version}-1_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "$out"
