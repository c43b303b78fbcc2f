#!/usr/bin/env bash
# Installs the Debian 12 packages Outpost needs to build, test and benchmark.
# Idempotent: installs only what is missing, and runs `apt-get update` only when
# something has to be installed. Prints what it installs.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache git
  libsqlite3-dev sqlite3
  libboost-dev
  capnproto libcapnp-dev
  libsodium-dev libssl-dev
  doctest-dev libcli11-dev libspdlog-dev nlohmann-json3-dev
  libpq-dev libzstd-dev
  clang-format clang-tidy
  jq
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} Debian packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
