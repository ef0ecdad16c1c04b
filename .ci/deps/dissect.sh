#!/bin/sh
# Debian's tshark for the dissect crate's cross-check tests (tshark and
# moonwire run the same Lua dissectors; their trees are compared).
# Debian's /usr/share/wireshark/init.lua sets run_user_scripts_when_superuser
# = true, so tshark runs -X lua_script as root (CI runs as root). If a
# Wireshark build says "Lua: ... disabled when running as root", set that
# variable to true in /etc/wireshark/init.lua (or run as a normal user).
set -eu
if command -v tshark >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
# wireshark-common asks whether non-root users may capture: answer no.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
apt-get install -y tshark
tshark --version | head -1
