#!/usr/bin/env bash
# Makes sure promtool (Debian's prometheus package) is on PATH: the alert-rule unit tests
# run it. As root with apt-get, installs the package; otherwise prints the command and fails.
set -euo pipefail

if command -v promtool >/dev/null; then
	exit 0
fi
install=(apt-get install -y --no-install-recommends prometheus)
if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
	echo "ensure-promtool: promtool is missing; installing Debian's prometheus package" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null
	command -v promtool >/dev/null || { echo "ensure-promtool: still no promtool after the install" >&2; exit 1; }
	exit 0
fi
cat >&2 <<MESSAGE
ensure-promtool: promtool is not installed, and it cannot be installed from here
(not root, or no apt-get). The alert-rule tests need it. Install it with:

    sudo apt-get update && sudo ${install[*]}

(or put any promtool 2.x on PATH), then run make test again.
MESSAGE
exit 1
