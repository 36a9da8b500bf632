#!/bin/sh
# Run a command against a real, unlocked Secret Service (gnome-keyring) on a private
# D-Bus session bus. The robust recipe from ../shared/research/feasibility.md §2.
#
#   HOME=$(mktemp -d) test/helpers/with-keyring.sh node test.mjs       # throw-away keyring
#   KEYRING_FRESH_HOME=1 test/helpers/with-keyring.sh secret-tool ...    # HOME made + removed here
#
# - starts `dbus-run-session`; inside it gnome-keyring-daemon runs in the FOREGROUND
#   (--components=secrets) and is unlocked with $KEYRING_PASSWORD (default "pass").
#   With an empty HOME it creates ~/.local/share/keyrings/login.keyring with that password.
# - waits (gdbus, up to $KEYRING_WAIT seconds, default 10) for org.freedesktop.secrets
# - runs "$@" (stdin, stdout, stderr passed through), then always kills the daemon and exits
#   with the command's exit code: 1 if the keyring did not come up, 127 if a tool is missing,
#   128+N after signal N.
# - INT/TERM/HUP sent to this script are forwarded (as TERM) to the command, the daemon is
#   stopped and everything is cleaned up. (dbus-run-session itself does not forward signals:
#   killing it orphans its children, so this script stays in front of it instead of exec'ing.)
# - the daemon's control directory is private to each run (parallel runs sharing a HOME do not
#   find each other's daemon) and is removed afterwards.
# Inside: DBUS_SESSION_BUS_ADDRESS (private bus), GNOME_KEYRING_CONTROL, HOME.
set -u

if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARG...]" >&2
  exit 2
fi
for tool in dbus-run-session gnome-keyring-daemon gdbus; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "with-keyring: '$tool' not found (apt-get install --no-install-recommends gnome-keyring dbus libglib2.0-bin)" >&2
    exit 127
  fi
done

WITH_KEYRING_TMP=$(mktemp -d "${TMPDIR:-/tmp}/with-keyring.XXXXXX") || exit 1
chmod 700 "$WITH_KEYRING_TMP"
mkdir -m 700 "$WITH_KEYRING_TMP/control"
if [ "${KEYRING_FRESH_HOME:-}" = 1 ]; then
  mkdir -m 700 "$WITH_KEYRING_TMP/home"
  HOME=$WITH_KEYRING_TMP/home
  export HOME
fi
export WITH_KEYRING_TMP

DRS=
outer_signal() {
  # ask the inner shell (it owns the daemon and the command) to stop, then wait for it
  if [ -s "$WITH_KEYRING_TMP/inner.pid" ]; then
    kill -TERM "$(cat "$WITH_KEYRING_TMP/inner.pid")" 2>/dev/null
  elif [ -n "$DRS" ]; then
    kill -TERM "$DRS" 2>/dev/null
  fi
  [ -n "$DRS" ] && wait "$DRS" 2>/dev/null
  rm -rf "$WITH_KEYRING_TMP"
  exit "$1"
}
trap 'outer_signal 130' INT
trap 'outer_signal 143' TERM
trap 'outer_signal 129' HUP

# Background + wait so traps run at once; fd 3 carries our stdin past the /dev/null that
# sh gives asynchronous commands.
exec 3<&0
dbus-run-session -- sh -c '
  set -u
  exec 3<&0  # keep our stdin (the callers) for the command, see below
  echo $$ >"$WITH_KEYRING_TMP/inner.pid"
  KR=
  CMD=
  cleanup() {
    if [ -n "$KR" ]; then kill "$KR" 2>/dev/null; wait "$KR" 2>/dev/null; KR=; fi
  }
  on_signal() {
    if [ -n "$CMD" ]; then kill -TERM "$CMD" 2>/dev/null; wait "$CMD" 2>/dev/null; fi
    cleanup
    exit "$1"
  }
  trap "on_signal 130" INT
  trap "on_signal 143" TERM
  trap "on_signal 129" HUP
  trap cleanup EXIT

  printf "%s" "${KEYRING_PASSWORD:-pass}" |
    gnome-keyring-daemon --foreground --unlock --components=secrets \
      --control-directory="$WITH_KEYRING_TMP/control" >"$WITH_KEYRING_TMP/daemon.log" 2>&1 &
  KR=$!

  if ! gdbus wait --session --timeout "${KEYRING_WAIT:-10}" org.freedesktop.secrets; then
    echo "with-keyring: gnome-keyring did not provide org.freedesktop.secrets within ${KEYRING_WAIT:-10}s" >&2
    cat "$WITH_KEYRING_TMP/daemon.log" >&2 2>/dev/null
    exit 1
  fi
  GNOME_KEYRING_CONTROL=$WITH_KEYRING_TMP/control
  export GNOME_KEYRING_CONTROL
  unset WITH_KEYRING_TMP

  "$@" <&3 3<&- &
  CMD=$!
  wait "$CMD"
  rc=$?
  CMD=
  exit "$rc"
' with-keyring "$@" <&3 &
DRS=$!
exec 3<&-
wait "$DRS"
rc=$?
rm -rf "$WITH_KEYRING_TMP"
exit "$rc"
