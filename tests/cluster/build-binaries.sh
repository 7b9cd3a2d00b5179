#!/usr/bin/env bash
# Builds the binaries of a real test control plane -- kube-apiserver,
# kube-controller-manager, kubectl (k8s.io/kubernetes), etcd and helm -- from the
# wrapper Go modules in tests/cluster/gobuild/, and prints the ABSOLUTE path of
# the folder that holds them as the last line of stdout. Progress goes to stderr.
#
#   dir=$(tests/cluster/build-binaries.sh | tail -n1)
#
# Binaries are built once into <repo>/.cache/cluster-bin/<k8s version>/ (or
# $KUBESTEPS_CACHE_DIR/cluster-bin/<k8s version>/) with a
# stamp per binary; a later run rebuilds only a binary whose wrapper module
# (go.mod, go.sum, main.go), Go version or build recipe changed, so a warm run
# takes well under a second. The Go module and build caches live next to them (in
# .cache/go), so everything stays in the git-ignored cache folder. A cold build needs
# the Go toolchain named in the wrapper go.mod files (or newer) and the Go module
# proxy; it takes 16 to 18 minutes on 2 cores and leaves 6.4 GB of caches.
#
# Binaries you already have:
#   KUBEBUILDER_ASSETS  a folder holding kube-apiserver, etcd and kubectl (envtest's
#                       convention). If it also holds kube-controller-manager and
#                       helm, that folder is printed and nothing is built; if it
#                       lacks either, the missing ones are built into the cache and
#                       a folder of symlinks to all five is printed.
#   TEST_ASSET_KUBE_APISERVER, TEST_ASSET_ETCD, TEST_ASSET_KUBECTL (and
#   TEST_ASSET_KUBE_CONTROLLER_MANAGER, TEST_ASSET_HELM)
#                       paths of single binaries; they win over KUBEBUILDER_ASSETS
#                       and are symlinked into the printed folder.
set -euo pipefail

# Bump when the way binaries are built changes, so every stamp goes stale.
RECIPE=1

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
GOBUILD=$REPO/tests/cluster/gobuild
# KUBESTEPS_CACHE_DIR moves the whole cache (binaries, Go module and build caches) out of
# the checkout, e.g. to one folder that every clone on a CI machine shares.
CACHE=${KUBESTEPS_CACHE_DIR:-$REPO/.cache}

log() { printf '%s\n' "build-binaries: $*" >&2; }
die() { log "error: $*"; exit 1; }

# The version a wrapper go.mod requires of a module: "require M vX" or a line "M vX" in a block.
modversion() { # go.mod module
	awk -v m="$2" '($1 == "require" && $2 == m) { print $3; exit } ($1 == m && $2 ~ /^v/) { print $2; exit }' "$1"
}
K8S_VERSION=$(modversion "$GOBUILD/kube/go.mod" k8s.io/kubernetes)
ETCD_VERSION=$(modversion "$GOBUILD/etcd/go.mod" go.etcd.io/etcd/server/v3)
HELM_VERSION=$(modversion "$GOBUILD/helm/go.mod" helm.sh/helm/v4)
[[ -n $K8S_VERSION && -n $ETCD_VERSION && -n $HELM_VERSION ]] || die "cannot read the pinned versions from $GOBUILD/*/go.mod"

BINARIES=(kube-apiserver etcd kubectl kube-controller-manager helm)
REQUIRED=(kube-apiserver etcd kubectl) # what KUBEBUILDER_ASSETS must hold to count

BUILD_DIR=$CACHE/cluster-bin/$K8S_VERSION

# The binary a user supplied for one name, or nothing.
supplied() { # name
	local var=TEST_ASSET_$(tr 'a-z-' 'A-Z_' <<<"$1")
	if [[ -n ${!var:-} ]]; then
		[[ -x ${!var} && ! -d ${!var} ]] || die "$var=${!var} is not an executable file"
		printf '%s\n' "$(cd "$(dirname "${!var}")" && pwd -P)/$(basename "${!var}")"
	elif [[ -n ${KUBEBUILDER_ASSETS:-} && -x $KUBEBUILDER_ASSETS/$1 && ! -d $KUBEBUILDER_ASSETS/$1 ]]; then
		printf '%s\n' "$(cd "$KUBEBUILDER_ASSETS" && pwd -P)/$1"
	fi
}

any_test_asset=false
for b in "${BINARIES[@]}"; do
	var=TEST_ASSET_$(tr 'a-z-' 'A-Z_' <<<"$b")
	if [[ -n ${!var:-} ]]; then any_test_asset=true; fi
done
if [[ -n ${KUBEBUILDER_ASSETS:-} ]]; then
	complete=true
	for b in "${REQUIRED[@]}"; do
		if [[ ! -x $KUBEBUILDER_ASSETS/$b ]]; then complete=false; fi
	done
	if ! $complete; then
		log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks one of ${REQUIRED[*]}: using what it has, building the rest"
	elif ! $any_test_asset && [[ -x $KUBEBUILDER_ASSETS/kube-controller-manager && -x $KUBEBUILDER_ASSETS/helm ]]; then
		log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
		(cd "$KUBEBUILDER_ASSETS" && pwd -P)
		exit 0
	fi
fi

# ---- building ---------------------------------------------------------------

GO_NEEDED=$(awk '$1 == "go" { print $2; exit }' "$GOBUILD/kube/go.mod")
no_binaries_help="build them with Go >= $GO_NEEDED on PATH (https://go.dev/doc/install), or
point KUBEBUILDER_ASSETS at a folder holding etcd, kube-apiserver, kubectl (and
kube-controller-manager, helm) of Kubernetes $K8S_VERSION, or set TEST_ASSET_* (see docs/testing.md)"
if ! command -v go >/dev/null; then
	# Binaries built earlier (a kept cache) still serve; without Go their stamps cannot be checked.
	built=true
	for b in "${BINARIES[@]}"; do
		[[ -x $BUILD_DIR/$b && -f $BUILD_DIR/.stamps/$b ]] || built=false
	done
	if $built && [[ -z ${KUBEBUILDER_ASSETS:-} ]] && ! $any_test_asset; then
		log "go is not on PATH: using the binaries built earlier in $BUILD_DIR unchecked"
		echo "$BUILD_DIR"
		exit 0
	fi
	die "go is not on PATH, so the control-plane binaries cannot be built: $no_binaries_help"
fi
go_have=$(go env GOVERSION)
go_have=${go_have#go}
if [[ $(printf '%s\n%s\n' "$GO_NEEDED" "$go_have" | sort -V | head -n1) != "$GO_NEEDED" ]]; then
	die "go $go_have is older than the $GO_NEEDED the wrapper modules need: $no_binaries_help"
fi
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" GOWORK=off
export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build
mkdir -p "$BUILD_DIR/.stamps" "$GOMODCACHE" "$GOCACHE"

# One build at a time per checkout (parallel test workers may all call this).
exec 9>"$CACHE/cluster-bin/.lock"
if command -v flock >/dev/null; then flock 9; fi

GO_VERSION=$(go env GOVERSION)

wrapper_of() { case $1 in etcd) echo etcd ;; helm) echo helm ;; *) echo kube ;; esac; }
package_of() { case $1 in etcd | helm) echo . ;; *) echo "./cmd/$1" ;; esac; }
version_of() { case $1 in etcd) echo "$ETCD_VERSION" ;; helm) echo "$HELM_VERSION" ;; *) echo "$K8S_VERSION" ;; esac; }

# What a binary's stamp records: anything whose change means a rebuild.
stamp_key() { # name
	local w=$GOBUILD/$(wrapper_of "$1")
	{
		echo "recipe=$RECIPE name=$1 version=$(version_of "$1") go=$GO_VERSION $(go env GOOS GOARCH | tr '\n' ' ')"
		cat "$w/go.mod" "$w/go.sum"
		find "$w" -name '*.go' -print0 | LC_ALL=C sort -z | xargs -0 cat
	} | sha256sum | cut -d' ' -f1
}

# The -X flags that the upstream builds set, so --version and `kubectl version` tell the truth.
ldflags_of() { # name
	local flags="-s -w" v
	v=$(version_of "$1")
	case $1 in
	etcd) ;; # etcd's version is a constant; only GitSHA comes from its build, and it is unknown here
	helm) flags+=" -X helm.sh/helm/v4/internal/version.version=$v" ;;
	*)
		local major minor date pkg
		IFS=. read -r major minor _ <<<"${v#v}"
		# The release's commit time, so the binary is reproducible.
		date=$(cd "$GOBUILD/kube" && go list -m -f '{{with .Time}}{{.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' k8s.io/kubernetes)
		for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
			flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
			[[ -n $date ]] && flags+=" -X $pkg.buildDate=$date"
		done
		;;
	esac
	printf '%s\n' "$flags"
}

build() { # name
	local name=$1 key stamp=$BUILD_DIR/.stamps/$1 start v
	v=$(version_of "$name")
	key=$(stamp_key "$name")
	if [[ -x $BUILD_DIR/$name && -f $stamp && $(<"$stamp") == "$key" ]]; then
		log "$name $v up to date"
		return
	fi
	log "building $name $v (a cold build of all five takes 16 to 18 minutes on 2 cores and 6.4 GB) ..."
	start=$SECONDS
	rm -f "$stamp"
	(cd "$GOBUILD/$(wrapper_of "$name")" &&
		go build -trimpath -ldflags="$(ldflags_of "$name")" -o "$BUILD_DIR/.$name.tmp" "$(package_of "$name")") >&2
	mv -f "$BUILD_DIR/.$name.tmp" "$BUILD_DIR/$name"
	echo "$key" >"$stamp"
	log "built $name $v in $((SECONDS - start))s"
}

total=$SECONDS
declare -A SRC=()
for b in "${BINARIES[@]}"; do
	src=$(supplied "$b")
	if [[ -n $src ]]; then SRC[$b]=$src; fi
done
if ((${#SRC[@]} == 0)); then
	for b in "${BINARIES[@]}"; do build "$b"; done
	log "done in $((SECONDS - total))s"
	echo "$BUILD_DIR"
	exit 0
fi

# Some binaries were supplied: a folder of symlinks, to the supplied ones and to built ones for the rest.
OUT=$CACHE/cluster-bin/$K8S_VERSION-assets
mkdir -p "$OUT"
for b in "${BINARIES[@]}"; do
	if [[ -n ${SRC[$b]:-} ]]; then
		log "$b: using ${SRC[$b]}"
		ln -sfn "${SRC[$b]}" "$OUT/$b"
	else
		build "$b"
		ln -sfn "$BUILD_DIR/$b" "$OUT/$b"
	fi
done
log "done in $((SECONDS - total))s"
echo "$OUT"
