
# shellcheck shell=sh
# --- appended by the labctl node image (docs/images.md, "ha_clustermsg race") ---
# The stock ha_clustermsg, `(echo ">>>"; cat -; echo "<<<") | cat - >> $HA_FIFO`, writes one message
# to heartbeat's FIFO in several write(2) calls. When two scripts send at the same moment (mach_down
# and req_resource do, when a node boots and its peer stays dead past initdead) the messages
# interleave, the FIFO reader logs "NV failure (msgfromsteam)", the ip-request-resp is lost, and the
# node never starts its own resource group (cl_status rscstatus stays "transition"). Measured in the
# lab. One write of at most PIPE_BUF (4096) bytes to a FIFO is atomic, so build the message first
# and hand it to dd in one block.
ha_clustermsg() {
	{ echo ">>>"; cat -; echo "<<<"; } \
	| dd of="$HA_FIFO" oflag=append conv=notrunc bs=4096 iflag=fullblock status=none
}
