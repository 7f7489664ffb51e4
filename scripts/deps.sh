# Sourced by run-local and test-all: installs what is missing, Debian 12, as root.
# Only calls apt-get when a package is actually missing, so a second run is fast.

SL_BUILD_PACKAGES="build-essential autoconf automake libtool pkg-config libfcgi-dev
libjansson-dev libcurl4-openssl-dev libyaml-dev libpcre2-dev libmariadb-dev
libmemcached-dev libssl-dev zlib1g-dev lighttpd curl ca-certificates"
# The libFuzzer targets (tests/fuzz/run.sh): clang and libFuzzer's runtime,
# which Debian's clang only recommends.
SL_FUZZ_PACKAGES="clang libclang-rt-dev"
# The web servers the integration tests put in front of sluice (issue 8), and
# systemd-socket-activate and systemd-analyze (package systemd) for the
# socket activation and install tests; groff for the man pages.
SL_SERVER_PACKAGES="apache2 libapache2-mod-fcgid nginx caddy systemd groff-base"

sl_install_missing() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}" >&2
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages (${missing[*]}): run as root, or install them first" >&2
        return 1
    fi
    apt-get update -qq
    # Installing a package must not start its service: the web servers would
    # all want port 80, and tests start their own on free loopback ports.
    # Debian's policy-rc.d says no to every start for the install's length
    # (only when the machine has none of its own).
    local policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
    fi
    local rc=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || rc=$?
    [ -z "$policy" ] || rm -f "$policy"
    return $rc
}

# Node.js 20 or newer with npm, for the integration tests: the Google and AWS
# SDKs the fakes are proven with need 20. Debian 12 ships Node 18, so on a
# fresh machine Debian's node and npm are installed first and then used to
# fetch the official Node 20 build from the npm registry (the node-linux-*
# packages) into .node/ at the top of the tree, which is put first on PATH.
SL_NODE_VERSION=20.20.2
sl_node_major() {
    node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}
sl_install_node() {
    local root arch dir
    root=$(pwd)
    case "$(uname -m)" in
        x86_64) arch=x64 ;;
        aarch64) arch=arm64 ;;
        *) arch="" ;;
    esac
    dir="$root/.node/node_modules/node-linux-$arch/bin"
    [ -x "$dir/node" ] && export PATH="$dir:$PATH"
    if command -v node >/dev/null 2>&1 && [ "$(sl_node_major)" -ge 20 ] &&
        command -v npm >/dev/null 2>&1; then
        return 0
    fi
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || sl_install_missing nodejs npm
    if [ "$(sl_node_major)" -lt 20 ]; then
        if [ -z "$arch" ]; then
            echo "Node.js 20 or newer is needed for the integration tests; install it for $(uname -m)" >&2
            return 1
        fi
        echo "fetching Node.js $SL_NODE_VERSION from the npm registry into .node/" >&2
        mkdir -p "$root/.node"
        npm install --prefix "$root/.node" --no-save --no-audit --no-fund --loglevel=error \
            "node-linux-$arch@$SL_NODE_VERSION" >&2
        export PATH="$dir:$PATH"
    fi
}

# Generates the build system when it is missing or older than its sources.
sl_bootstrap() {
    if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
        autoreconf -fi
    fi
}
