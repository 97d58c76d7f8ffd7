#!/usr/bin/env bash
# Installs every Debian package cachefuse's build, tests and benchmarks need.
# Idempotent and non-interactive; safe to run again. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config clang-format clang-tidy
  libfuse3-dev fuse3 liburing-dev libspdlog-dev libfmt-dev libcli11-dev catch2
  libtomlplusplus-dev libsystemd-dev
  libcurl4-openssl-dev libnfs-dev libsmbclient-dev
  # tests: real servers on loopback and the tools that talk to them
  python3 python3-pytest attr curl openssl nginx-light nfs-ganesha nfs-ganesha-vfs libnfs-utils samba smbclient
  e2fsprogs util-linux procps psmisc systemd kmod bc
  # benchmarks: the workload and the peers
  fio rclone mergerfs httpdirfs time
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Without a policy-rc.d, installing samba/nginx/ganesha starts daemons on every
# interface. 101 = "action not allowed": packages install but nothing starts.
if [ ! -x /usr/sbin/policy-rc.d ] || ! grep -q 'exit 101' /usr/sbin/policy-rc.d; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
${SUDO:+$SUDO -E} apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
