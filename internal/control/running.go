package control

import (
	"bytes"
	"slices"
	"strings"
)

// soAcceptCon is the flag /proc/net/unix shows for a listening socket
// (__SO_ACCEPTCON).
const soAcceptCon = "00010000"

// parseProcNetUnix returns the device names of the listening control
// sockets in the contents of /proc/net/unix, whose lines read
//
//	Num       RefCount Protocol Flags    Type St Inode Path
//	0000000000000000: 00000002 00000000 00010000 0001 01 31337 @quictun/qt0
//
// (abstract names shown with a leading "@"). Connections accepted by a
// listener show its name too; the flag tells them apart.
func parseProcNetUnix(b []byte) []string {
	var devs []string
	for _, line := range bytes.Split(b, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) < 8 || f[3] != soAcceptCon || !strings.HasPrefix(f[7], addrPrefix) {
			continue
		}
		if dev := strings.TrimPrefix(f[7], addrPrefix); dev != "" {
			devs = append(devs, dev)
		}
	}
	slices.Sort(devs)
	return slices.Compact(devs)
}
