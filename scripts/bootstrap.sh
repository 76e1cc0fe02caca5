#!/bin/sh
# Installs the Debian packages weir needs to build and test, only those missing. Debian 12, root.
# usage: scripts/bootstrap.sh [build|test|bench]
set -eu
want="build-essential cmake ninja-build ccache pkg-config libboost-dev libtbb-dev \
prometheus-cpp-dev libyaml-cpp-dev libspdlog-dev nlohmann-json3-dev libgtest-dev libgmock-dev \
libbenchmark-dev libfuse3-dev libhttp-parser-dev"  # libhttp-parser: the differential fuzzer's oracle
case "${1:-build}" in
  # test: prometheus (metrics tests), fuse3 (slowfs), clang and libclang-rt (libFuzzer: tests/fuzz)
  test) want="$want curl python3 prometheus fuse3 util-linux clang libclang-rt-14-dev" ;;
  bench) want="$want wrk nginx-light lighttpd h2o python3 python3-matplotlib curl fuse3 util-linux" ;;
esac
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "bootstrap: missing packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
  exit 1
fi
echo "bootstrap: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
