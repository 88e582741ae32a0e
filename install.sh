#!/usr/bin/env bash
# Install marslink into ./.venv (next to this script), from any working directory.
#
#   ./install.sh         system basics if missing, .venv, pip install -e .
#   ./install.sh --all   the same plus the test tools: pip install -e '.[test]'
#
# Meant for root on Debian 12 (apt-get runs only when a package is missing);
# idempotent, needs no standard input.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# libiio0: the C library pyadi-iio drives a PlutoSDR through (small: ~3 MB with its deps);
# without it `import adi` fails. The virtual Pluto's server needs no system library.
BASE_PACKAGES=(python3 python3-venv python3-pip git libiio0)

usage() {
    sed -n '2,8s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

log() {
    echo "install.sh: $*"
}

# Print the packages among "$@" that dpkg does not have installed.
missing_packages() {
    local pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
            echo "$pkg"
        fi
    done
}

apt_install() {
    local missing
    mapfile -t missing < <(missing_packages "$@")
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    if ((EUID != 0)); then
        log "missing system packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_system_base() {
    if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
        log "no apt-get here: make sure ${BASE_PACKAGES[*]} (Python >= 3.11 with venv) are installed" >&2
        return 0
    fi
    apt_install "${BASE_PACKAGES[@]}"
}

# ---------------------------------------------------------------------------
# install_system_all: system packages for --all (the full test suite).
# gnuradio: GNU Radio 3.10 with gr-dtv, the independent DVB-S2 reference the
# conformance tests drive through /usr/bin/python3 (tests/gr/).
# libiio-utils: libiio's own clients (iio_info, iio_attr), which the virtual
# Pluto's tests run against it.
# ---------------------------------------------------------------------------
SYSTEM_ALL_PACKAGES=(gnuradio libiio-utils)

install_system_all() {
    install_system_base
    if command -v apt-get >/dev/null; then
        apt_install "${SYSTEM_ALL_PACKAGES[@]}"
    fi
}

main() {
    local all=0 arg
    for arg in "$@"; do
        case "$arg" in
            --all) all=1 ;;
            -h | --help) usage; return 0 ;;
            *) log "unknown argument: $arg" >&2; usage >&2; return 2 ;;
        esac
    done

    cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"

    if ((all)); then
        install_system_all
    else
        install_system_base
    fi

    if [[ ! -x .venv/bin/python ]]; then
        python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
            log "marslink needs Python >= 3.11; python3 is $(python3 --version 2>&1)" >&2
            exit 1
        }
        log "creating .venv"
        python3 -m venv .venv
    fi

    local target=.
    ((all)) && target='.[test]'
    log "pip install -e $target"
    .venv/bin/python -m pip install -q -e "$target"
    log "done: $(.venv/bin/marslink --version)"
}

main "$@"
