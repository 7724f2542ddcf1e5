#!/bin/sh
# /init of a Provenant measured-launch initrd (docs/measured-launch.md). The launch measurement covers this file, the
# job's files under /opt/provenant and the kernel command line; this script gives the command line's
# `provenant.job=sha256:<hex>` its meaning: it recomputes the job-code digest (the OMS v1.0 root digest, method
# files, of the package directory; enclave-job/code-digest.ts is the other implementation, and a test holds the two
# equal) and refuses to start a job whose files differ. Needs sh, find, sed, tr, sort, cut, openssl and sha256sum.
set -eu

if [ "$$" = 1 ]; then
  # PID 1 in the guest: fixed paths only (the kernel hands unknown command-line words to init as variables).
  mount -t proc proc /proc
  mount -t sysfs sysfs /sys
  mount -t devtmpfs devtmpfs /dev 2>/dev/null || true
  mount -t configfs configfs /sys/kernel/config 2>/dev/null || true
  JOB_ROOT=/opt/provenant
  CMDLINE_FILE=/proc/cmdline
  DRY_RUN=""
else
  # Anywhere else (the tests): the same check on the paths the caller gives; nothing is started.
  JOB_ROOT=${PROVENANT_JOB_ROOT:?}
  CMDLINE_FILE=${PROVENANT_CMDLINE_FILE:?}
  DRY_RUN=1
fi

refuse() {
  echo "provenant init: $*; refusing to start the job" >&2
  if [ -z "$DRY_RUN" ]; then poweroff -f; fi
  exit 1
}

# Every regular file under the root except OMS's git paths and .provenant, in OMS order (path component by
# component: "/" must sort before every other byte, hence the swap to \001 around `sort`), the SHA-256 of each, then
# the SHA-256 over the concatenated raw digests. Anything unreadable makes a wrong digest, so the check fails closed.
job_code_digest() (
  cd "$1" || exit 1
  find . \( -path ./.git -o -path ./.gitattributes -o -path ./.github -o -path ./.gitignore -o -path ./.provenant \) \
    -prune -o \( -type f -o -type l \) -print |
    sed 's|^\./||' | tr '/' '\001' | LC_ALL=C sort | tr '\001' '/' |
    while IFS= read -r file; do openssl dgst -sha256 -binary <"$file" || exit 1; done |
    sha256sum | cut -c1-64
)

expected=$(tr -s ' \t\n' '\n\n\n' <"$CMDLINE_FILE" | sed -n 's/^provenant\.job=//p')
case "$expected" in
  sha256:*) ;;
  *) refuse "the kernel command line names no provenant.job=sha256:<digest>" ;;
esac
[ "$(printf '%s\n' "$expected" | wc -l)" -eq 1 ] || refuse "the kernel command line names provenant.job= twice"
actual="sha256:$(job_code_digest "$JOB_ROOT")"
[ "$expected" = "$actual" ] || refuse "the command line names $expected but $JOB_ROOT holds $actual"
echo "provenant init: job code $actual matches the kernel command line"
[ -z "$DRY_RUN" ] || exit 0

# The job to run is the rest of the measured command line, after "--" (the kernel passes it to init as arguments),
# e.g. `-- job audit --model /models/m.gguf --suite builtin:mc --provider tsm --push <repo>`.
export PROVENANT_HOME=/var/lib/provenant
exec "$JOB_ROOT/bin/provenant" "$@"
