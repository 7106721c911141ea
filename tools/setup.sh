#!/usr/bin/env bash
# Installs every build, test and benchmark dependency from Debian's packages. Idempotent: when
# everything is already installed it changes nothing and asks no mirror.
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  libuv1-dev libhiredis-dev libfmt-dev doctest-dev libtomlplusplus-dev libsqlite3-dev libssl-dev
  libhttp-parser-dev openssl
  redis-server redis-tools nutcracker
  valgrind  # tools/count_instructions.sh: instruction counts for A/B runs on a noisy machine
  python3 python3-redis python3-pytest
  clang libclang-rt-14-dev clang-format
  procps curl
  systemd  # systemd-analyze, which checks conf/readthru.service (no running systemd needed)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -q
# Debian's redis-server package would start a system redis on 6379; readthru's scripts start
# their own, so policy-rc.d keeps the package's service from starting where that is possible.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
