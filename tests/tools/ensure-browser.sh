#!/usr/bin/env bash
# Makes sure the browser suite (tests/ui) has what it drives: Debian's chromium package and
# playwright-core from npm (the library alone: it downloads no browser; the tests launch
# /usr/bin/chromium through executablePath). Prints the ABSOLUTE path of the folder holding
# node_modules/playwright-core as the last line of stdout; progress goes to stderr.
#
#   dir=$(tests/tools/ensure-browser.sh | tail -n1)
#
# playwright-core goes to <repo>/.cache/playwright-core/<version>/ (or
# $KUBESTEPS_CACHE_DIR/playwright-core/<version>/), installed once; a warm run takes well
# under a second. As root with apt-get, chromium is installed when missing; otherwise the
# command to install it is printed and the script fails. CHROMIUM=/path/to/chrome uses
# another Chromium build instead.
set -euo pipefail

# The version the suite is tested with; playwright-core has no dependencies of its own.
PLAYWRIGHT_CORE=1.65.2
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
CACHE=${KUBESTEPS_CACHE_DIR:-$REPO/.cache}
TARGET=$CACHE/playwright-core/$PLAYWRIGHT_CORE
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

log() { printf '%s\n' "ensure-browser: $*" >&2; }

if [[ ! -x $CHROMIUM ]]; then
	install=(apt-get install -y --no-install-recommends chromium)
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
		log "$CHROMIUM is missing; installing Debian's chromium package (a few minutes)"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null
		[[ -x $CHROMIUM ]] || { log "still no $CHROMIUM after the install"; exit 1; }
	else
		cat >&2 <<MESSAGE
ensure-browser: $CHROMIUM is not installed, and it cannot be installed from here (not
root, or no apt-get). The browser tests (tests/ui) need it. Install it with:

    sudo apt-get update && sudo ${install[*]}

(or set CHROMIUM to another Chromium binary), then run make test again.
MESSAGE
		exit 1
	fi
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	log "node and npm are needed to drive the browser (Debian: apt-get install nodejs npm)"
	exit 1
fi

if [[ ! -f $TARGET/node_modules/playwright-core/package.json ]]; then
	log "installing playwright-core $PLAYWRIGHT_CORE into $TARGET (no browser download)"
	mkdir -p "$TARGET.partial"
	# No package.json or lock file of ours: the version above is the whole of it.
	npm install --prefix "$TARGET.partial" --no-save --no-package-lock --no-audit --no-fund \
		--loglevel=error "playwright-core@$PLAYWRIGHT_CORE" >&2
	rm -rf "$TARGET"
	mv "$TARGET.partial" "$TARGET"
fi
echo "$TARGET"
