#!/usr/bin/env bash
# Installs this checkout as a systemd service:
#   /opt/flowrelay                 code (root-owned, read-only to the service)
#   /etc/flowrelay/flowrelay.yaml  config, created from config/flowrelay.yaml only if absent
#   /etc/flowrelay/flowrelay.env   secrets for ${NAME} references, created empty if absent
#   /var/lib/flowrelay             recordings and state (systemd's StateDirectory)
#   /etc/systemd/system/flowrelay.service
# Run as root from a checkout: sudo deploy/install.sh. Safe to run again to upgrade;
# it never overwrites an existing config or env file. It does not start the service.
set -euo pipefail

PREFIX=/opt/flowrelay
CONF_DIR=/etc/flowrelay
STATE_DIR=/var/lib/flowrelay
UNIT=/etc/systemd/system/flowrelay.service

[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root (sudo $0)" >&2; exit 1; }

src="$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
[ -f "$src/config/flowrelay.yaml" ] || { echo "install.sh: $src/config/flowrelay.yaml is missing" >&2; exit 1; }

# Copy the checkout's sources (not its node_modules, build output or data), then
# install dependencies and build in place. src/ and dist/ are replaced, not merged,
# so no module removed upstream lingers.
if [ "$src" != "$PREFIX" ]; then
  mkdir -p "$PREFIX"
  rm -rf "${PREFIX:?}/src" "${PREFIX:?}/dist"
  tar -C "$src" --exclude=./.git --exclude=./node_modules --exclude=./dist \
      --exclude=./data --exclude=./test-results --exclude=./bench-results -cf - . \
    | tar -C "$PREFIX" --no-same-owner -xf -
fi
# Building needs the dev dependencies that the last install pruned: removing
# npm's marker makes setup.sh run a full `npm ci`.
rm -f "$PREFIX/node_modules/.package-lock.json"
bash "$PREFIX/scripts/setup.sh"
# The service needs only runtime dependencies. Without the marker, a later setup.sh
# in $PREFIX knows node_modules is incomplete.
(cd "$PREFIX" && npm prune --omit=dev --no-audit --no-fund && rm -f node_modules/.package-lock.json)
chmod -R u=rwX,go=rX "$PREFIX"

if ! getent passwd flowrelay >/dev/null; then
  useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
    --shell /usr/sbin/nologin --comment "flowrelay media relay" flowrelay
fi

# The directory is group-writable because the API persists changes into the config
# by writing a temp file next to it and renaming it over the original.
install -d -o root -g flowrelay -m 2770 "$CONF_DIR"
if [ -e "$CONF_DIR/flowrelay.yaml" ]; then
  echo "install.sh: keeping existing $CONF_DIR/flowrelay.yaml"
else
  node "$PREFIX/deploy/prepare-config.mjs" "$PREFIX/config/flowrelay.yaml" "$CONF_DIR/flowrelay.yaml" \
    --storage-dir "$STATE_DIR"
  chown root:flowrelay "$CONF_DIR/flowrelay.yaml"
  chmod 0660 "$CONF_DIR/flowrelay.yaml"
  echo "install.sh: wrote $CONF_DIR/flowrelay.yaml (storage.dir: $STATE_DIR)"
fi
if [ ! -e "$CONF_DIR/flowrelay.env" ]; then
  # Read by systemd as root before dropping privileges: the service user cannot read it.
  install -o root -g root -m 0600 /dev/null "$CONF_DIR/flowrelay.env"
  echo "# NAME=value lines for \${NAME} references in flowrelay.yaml" >"$CONF_DIR/flowrelay.env"
fi

install -m 0644 "$PREFIX/deploy/flowrelay.service" "$UNIT"
if [ "$(command -v node)" != /usr/bin/node ]; then
  echo "install.sh: warning: node on PATH is $(command -v node), the unit runs /usr/bin/node;" \
       "override ExecStart with 'systemctl edit flowrelay' if that is not Node.js 20+" >&2
fi
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
fi

cat <<EOF
install.sh: done. Next:
  edit $CONF_DIR/flowrelay.yaml (and secrets in $CONF_DIR/flowrelay.env), then
  sudo bash -c 'set -a; . $CONF_DIR/flowrelay.env; exec /usr/bin/node $PREFIX/bin/flowrelay check $CONF_DIR/flowrelay.yaml'
  sudo systemctl enable --now flowrelay
  journalctl -u flowrelay -f
EOF
