#!/usr/bin/env bash
# fresh-root.sh — runs a command in a bare Debian 12 root holding a copy of this checkout.
#
# What it is for: proving that README's commands work on a machine that has nothing but
# git (CI does it on every submission), and checking a new dependency before it lands: a
# package installed by hand on your own machine hides a missing entry in packages.txt.
# It builds a minimal root (`mmdebstrap --variant=minbase --include=git,ca-certificates
# bookworm`) from the Debian entries of this machine's own apt sources (nothing here
# names a host), copies the working tree into ROOT/src/memtrade (tracked files and
# untracked ones git does not ignore: what a commit would hold), binds /proc, /sys, /dev,
# /dev/pts and /dev/shm, and runs COMMAND there as root with a clean environment
# (OPENBLAS_CORETYPE passed through). The binds are undone on every exit path, and the
# root is deleted afterwards unless --keep is given.
# What it is not for: a container or a sandbox; the command runs as root in a chroot.
#
# Usage: scripts/fresh-root.sh [--keep] [--reuse] ROOT COMMAND...
#   e.g. sudo scripts/fresh-root.sh /var/tmp/mt-root ./scripts/test.sh
#   --keep    leave ROOT in place afterwards (to look inside, or for --reuse)
#   --reuse   skip the bootstrap when ROOT already holds a root (not bare any more:
#             for iterating on a script, never for the final check)
# Exit status: COMMAND's, or 2 for usage errors, 4 when the root cannot be made.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
keep=0
reuse=0
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) keep=1; shift ;;
    --reuse) reuse=1; keep=1; shift ;;
    --) shift; break ;;
    -*) echo "fresh-root: unknown option '$1' (see the header of $0)" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || { echo "usage: $0 [--keep] [--reuse] ROOT COMMAND..." >&2; exit 2; }
root=$1
shift
[ "$(id -u)" -eq 0 ] || { echo "fresh-root: must run as root (mmdebstrap, chroot and bind mounts)" >&2; exit 2; }
case "$root" in
  /|/usr|/etc|/var|/home|/root) echo "fresh-root: refusing ROOT '$root'" >&2; exit 2 ;;
esac
root=$(realpath -m "$root")

t0=$(date +%s)
say() { echo "fresh-root [$(( $(date +%s) - t0 ))s]: $*"; }

mounted=()
cleanup() {
  local status=$?
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}" 2>/dev/null ||
      echo "fresh-root: could not unmount ${mounted[$i]}" >&2
  done
  mounted=()
  if [ $keep -eq 0 ] && [ -d "$root" ]; then
    # Never delete through a bind that is still there.
    if grep -q " $root[/ ]" /proc/self/mounts; then
      echo "fresh-root: $root still has mounts; left in place" >&2
    else
      rm -rf "$root"
    fi
  fi
  rm -f "${sources:-}"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# debian_sources: prints this machine's apt entries for Debian's own archive (deb822
# stanzas signed by debian-archive-keyring, or one-line entries of a bookworm suite), so
# the root reaches whatever mirror or proxy this machine reaches, and nothing else.
debian_sources() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN { RS = ""; ORS = "\n\n" }
         /(^|\n)Types:[^\n]*deb/ && /(^|\n)Suites:[ \t]*bookworm/ &&
         (/debian-archive-keyring/ || !/Signed-By:/) { print }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" {
           i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
           if ($(i + 1) ~ /^bookworm(-updates|-security|-backports)?$/) print
         }' "$f"
  done
}

if [ $reuse -eq 1 ] && [ -f "$root/etc/debian_version" ]; then
  say "reusing the root in $root (not bare)"
else
  command -v mmdebstrap >/dev/null ||
    { echo "fresh-root: needs mmdebstrap (apt-get install mmdebstrap)" >&2; exit 4; }
  if [ -e "$root" ]; then
    grep -q " $root[/ ]" /proc/self/mounts && { echo "fresh-root: $root has mounts" >&2; exit 4; }
    rm -rf "$root"
  fi
  sources=$(mktemp --suffix=.sources)
  debian_sources >"$sources"
  grep -q '[^[:space:]]' "$sources" ||
    { echo "fresh-root: no Debian bookworm entry in this machine's apt sources" >&2; exit 4; }
  say "bootstrapping a minbase bookworm root in $root"
  mmdebstrap --quiet --variant=minbase --include=git,ca-certificates bookworm "$root" "$sources" ||
    { echo "fresh-root: mmdebstrap failed" >&2; exit 4; }
  say "root ready ($(du -sh "$root" | cut -f1))"
fi
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

# The working tree as a commit would hold it.
rm -rf "$root/src/memtrade"
mkdir -p "$root/src/memtrade"
(cd "$top" && git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  tar --null -T - -cf -) | tar -C "$root/src/memtrade" -xf -
if [ -d "$top/../shared" ]; then
  rm -rf "$root/src/shared"
  cp -a "$top/../shared" "$root/src/shared"
fi
say "copied the working tree to $root/src/memtrade"

# The root becomes a mount point of its own, private: inside it "/" is then a mount as on
# a real machine (unshare -m works there), and nothing mounted inside propagates out.
mount --bind "$root" "$root"
mounted+=("$root")
mount --make-private "$root"
for m in proc sys dev dev/pts dev/shm; do
  mkdir -p "$root/$m"
  mount --bind "/$m" "$root/$m"
  mounted+=("$root/$m")
done

say "running: $*"
status=0
chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  ${OPENBLAS_CORETYPE:+OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE} \
  /bin/bash -c 'cd /src/memtrade && exec "$@"' fresh-root "$@" || status=$?
say "command ended with status $status"
exit $status
