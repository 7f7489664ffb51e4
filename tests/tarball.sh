#!/usr/bin/env bash
# A release tarball builds on a machine without autotools: unpacks the
# tarball `make dist` made (the argument) into a temp dir and runs
# configure and make with autoconf, automake, aclocal, autoheader,
# autoreconf, autom4te and libtoolize replaced by stubs that fail, first
# on PATH. If a timestamp in the tarball made make want to regenerate the
# build system, a stub would run and the build would fail.
set -euo pipefail
tarball=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[ -f "$tarball" ] || { echo "tarball.sh: no tarball $1" >&2; exit 2; }
work=$(mktemp -d -t sluice-tarball-XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/stubs"
for tool in autoconf automake aclocal autoheader autoreconf autom4te libtoolize; do
    printf '#!/bin/sh\necho "tarball.sh: %s was run: a release tarball must build without autotools" >&2\nexit 1\n' \
        "$tool" >"$work/stubs/$tool"
    chmod 755 "$work/stubs/$tool"
    # the Makefiles call the versioned names (automake-1.16, aclocal-1.16)
    for v in 1.16 2.71 2.69; do ln -s "$tool" "$work/stubs/$tool-$v"; done
done
tar -xzf "$tarball" -C "$work"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'sluice-*' | head -n 1)
[ -n "$src" ] || { echo "tarball.sh: nothing unpacked" >&2; exit 1; }
cd "$src"
export PATH="$work/stubs:$PATH"
for tool in autoconf automake aclocal autoreconf; do
    if "$tool" --version >/dev/null 2>&1; then echo "tarball.sh: $tool still runs" >&2; exit 1; fi
done
./configure -q --enable-werror
make -s -j"$(nproc 2>/dev/null || echo 2)" >"$work/make.log" 2>&1 || { tail -n 40 "$work/make.log"; exit 1; }
if grep -q 'was run: a release tarball' "$work/make.log"; then cat "$work/make.log"; exit 1; fi
./sluice --version
echo "tarball.sh: $(basename "$tarball") builds without autotools"
