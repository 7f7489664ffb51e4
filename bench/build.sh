# bench/build.sh — sourced by the benchmarks that link the sluice library
# directly (translate.sh, route.sh): brings a build's libsluice.a up to date
# and compiles one bench program against it with the build's own flags.
#
# Needs: ROOT (the repo), OUT (bench/out), SLUICE_BUILD (a build directory;
# configured out of tree on first use), say and die.

# bench_build_program NAME SOURCE BINARY
bench_build_program() {
    local name=$1 src=$2 bin=$3 flags dep_cflags dep_libs sl_ldflags
    local -a defs_args
    mkdir -p "$OUT"
    if [ ! -f "$SLUICE_BUILD/Makefile" ]; then
        [ -x "$ROOT/configure" ] || die "no configure script at the repo root: run autoreconf -fi there first"
        say "$name: configuring $SLUICE_BUILD (out of tree)"
        mkdir -p "$SLUICE_BUILD"
        (cd "$SLUICE_BUILD" && "$ROOT/configure") >"$OUT/$name-configure.log" 2>&1 ||
            die "configure failed: see $OUT/$name-configure.log"
    fi
    if ! make -C "$SLUICE_BUILD" libsluice.a >"$OUT/$name-make.log" 2>&1; then
        tail -20 "$OUT/$name-make.log" >&2
        die "make libsluice.a failed in $SLUICE_BUILD (log: $OUT/$name-make.log)"
    fi
    # The build's own flags: DEP_CFLAGS / DEP_LIBS as Makefile.am links the
    # unit tests, DEFS from configure (AC_USE_SYSTEM_EXTENSIONS), LIBS, SL_LDFLAGS.
    flags=$(make -s --no-print-directory -C "$SLUICE_BUILD" -f Makefile -f - sl-print-flags 2>/dev/null <<'MAKE'
sl-print-flags:
	@echo 'SLF_DEFS=$(DEFS)'
	@echo 'SLF_CFLAGS=$(DEP_CFLAGS)'
	@echo 'SLF_LIBS=$(DEP_LIBS) $(LIBS)'
	@echo 'SLF_LDFLAGS=$(SL_LDFLAGS)'
MAKE
)
    dep_cflags=$(sed -n 's/^SLF_CFLAGS=//p' <<<"$flags")
    # DEFS is written for a shell (-DPACKAGE_STRING=\"sluice\ 0.1.0\"): split it as one
    eval "defs_args=($(sed -n 's/^SLF_DEFS=//p' <<<"$flags"))"
    dep_libs=$(sed -n 's/^SLF_LIBS=//p' <<<"$flags")
    sl_ldflags=$(sed -n 's/^SLF_LDFLAGS=//p' <<<"$flags")
    [ -n "$dep_libs" ] || die "could not read DEP_LIBS from $SLUICE_BUILD/Makefile"
    # shellcheck disable=SC2086  # the flags are word lists
    gcc -O2 -g -std=gnu11 -Wall -Wextra -Wno-unused-parameter -pthread "${defs_args[@]}" $dep_cflags \
        -I"$ROOT/src" -I"$ROOT/providers" -I"$ROOT/tests" -DSL_SYSCONFDIR='"/etc"' \
        -o "$bin" "$src" "$SLUICE_BUILD/libsluice.a" $dep_libs $sl_ldflags ||
        die "cannot build $bin"
}
