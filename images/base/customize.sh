#!/bin/sh
# Turn a Debian bookworm root filesystem into the labctl base.
# Usage: customize.sh <root>   (mmdebstrap --customize-hook passes the chroot directory;
#                               the pulled-image path runs it inside a build with root "/")
# Everything here must be idempotent: debian:bookworm-slim already has some of it.
set -eu
root=${1:?usage: customize.sh <root>}

# G23: samba's and heartbeat's postinst scripts call "invoke-rc.d <daemon> start". Without a policy
# that says "no", daemons would start during "docker build" and leave pidfiles and state in the
# image. 101 = "action forbidden by policy" (invoke-rc.d(8)). Official Debian images ship the same.
mkdir -p "$root/usr/sbin"
printf '#!/bin/sh\n# labctl: never start services while building an image (invoke-rc.d(8))\nexit 101\n' \
    >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"

# Node identity must never be baked into an image (the same trap as G9 for heartbeat's hb_uuid):
# an empty machine-id would be filled in at first boot by systemd, which containers do not run, so
# drop it entirely; nothing in the lab reads it.
rm -f "$root/etc/machine-id" "$root/var/lib/dbus/machine-id"

# Docker supplies these per container (bind mounts); a copy from the build host must not linger.
# (Inside a "docker build" they are bind mounts themselves: leave them alone there.)
if [ "$root" != / ]; then
    rm -f "$root/etc/resolv.conf"
    : >"$root/etc/hostname"
fi

# Keep images lean: apt lists and downloaded .debs are useless once installed.
rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb
