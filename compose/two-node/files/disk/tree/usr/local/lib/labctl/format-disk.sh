set -eu
img=/disk/disk.img
truncate -s 1073741824 "$img"
: >/disk/loops
dev=$(losetup --find --show --offset 1048576 --sizelimit 16777216 "$img")
echo "sda1 $dev" >>/disk/loops
echo "loop sda1 $dev"
eval loop_sda1=$dev
dev=$(losetup --find --show --offset 17825792 --sizelimit 67108864 "$img")
echo "sda2 $dev" >>/disk/loops
echo "loop sda2 $dev"
eval loop_sda2=$dev
dev=$(losetup --find --show --offset 84934656 --sizelimit 988807168 "$img")
echo "sda3 $dev" >>/disk/loops
echo "loop sda3 $dev"
eval loop_sda3=$dev
ogfsconf -c /etc/ogfscf.cf -d "$loop_sda1"
mkfs.ogfs -p memexp -t /dev/sda1 -j 2 -J 32 -O "$loop_sda3"
