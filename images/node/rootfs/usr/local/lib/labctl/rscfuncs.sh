# shellcheck shell=sh
# Shell functions shared by the lab's heartbeat resource scripts (/etc/ha.d/resource.d/smb, memexpd).
# POSIX sh. Rules every script follows (ha-stack.md):
#   G17  `status` prints "<name> is running" or "<name> is stopped": ResourceManager reads the text
#        ("running" and not "not running" = owned) and ignores the exit code;
#   G18  `stop` succeeds when nothing runs, and does not return while anything still runs (10 failed
#        stops make ResourceManager fence the node);
#   G20  daemons are started through labctl-detach, so they hold none of heartbeat's pipes.
# Exit codes are LSB's: 0 ok, 1 generic error, 2 usage, 3 (status) stopped, 5 not installed,
# 6 not configured.

# shellcheck disable=SC2034 # used by the scripts that source this file
DETACH=/usr/local/sbin/labctl-detach

# pids whose executable is $1 (an absolute path, or a pattern such as /usr/libexec/samba/*).
# Matches on /proc/<pid>/exe, so it survives PID reuse and process renaming.
pids_by_exe() {
    find /proc -mindepth 2 -maxdepth 2 -name exe -lname "$1" 2>/dev/null | cut -d/ -f3
}

# pids whose command line matches the extended regex $1 (for scripts: exe is the interpreter).
pids_by_cmdline() {
    pgrep -f -- "$1" 2>/dev/null
}

# The pid in pidfile $1 if that process is alive and its command line contains $2.
pid_from_file() {
    [ -r "$1" ] || return 1
    read -r _pid _rest <"$1" 2>/dev/null || [ -n "${_pid:-}" ] || return 1
    case $_pid in '' | *[!0-9]*) return 1 ;; esac
    [ -r "/proc/$_pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$_pid/cmdline" 2>/dev/null | grep -q -- "$2" || return 1
    echo "$_pid"
}

# wait_gone SECONDS PID... : wait until none of the pids exists; 0 if they all went.
wait_gone() {
    _deadline=$(( $1 * 10 ))
    shift
    while [ "$_deadline" -gt 0 ]; do
        _alive=
        for _p in "$@"; do
            # a zombie is gone for our purposes (its parent will reap it)
            if [ -e "/proc/$_p" ] && ! grep -q '^State:.*Z' "/proc/$_p/status" 2>/dev/null; then
                _alive=1
                break
            fi
        done
        [ -z "$_alive" ] && return 0
        sleep 0.1
        _deadline=$((_deadline - 1))
    done
    return 1
}

# rsc_log MESSAGE: to stdout (ResourceManager puts start/stop output into its log).
rsc_log() {
    echo "$RSC_NAME: $*"
}
