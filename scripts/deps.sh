# Sourced by run-local and test-all: installs what is missing, Debian 12, as root.
# Only calls apt-get when a package is actually missing, so a second run is fast.

SL_BUILD_PACKAGES="build-essential autoconf automake libtool pkg-config libfcgi-dev
libjansson-dev libcurl4-openssl-dev libyaml-dev libpcre2-dev libmariadb-dev
libmemcached-dev libssl-dev lighttpd curl ca-certificates"

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
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Node.js 18 or newer with npm, for the integration tests (Debian 12 ships 18).
sl_install_node() {
    local major=0
    if command -v node >/dev/null 2>&1; then
        major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
    fi
    if [ "$major" -lt 18 ]; then
        sl_install_missing nodejs npm
    elif ! command -v npm >/dev/null 2>&1; then
        sl_install_missing npm
    fi
}

# Generates the build system when it is missing or older than its sources.
sl_bootstrap() {
    if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
        autoreconf -fi
    fi
}
