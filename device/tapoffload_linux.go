package device

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/quictun/quictun/packet"
)

// A TAP is opened with IFF_VNET_HDR: every frame read or written starts with
// a struct virtio_net_hdr (include/uapi/linux/virtio_net.h), in host byte
// order. With TUNSETOFFLOAD (TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6) the kernel
// hands over frames whose checksum is left partial and TCP super-frames of
// up to 64 KiB; Read completes the checksums and splits the super-frames.

const (
	// vnetHdrLen is the size of struct virtio_net_hdr.
	vnetHdrLen = 10
	// tapFrameMax is the largest frame a TAP read is given room for: a
	// 64 KiB GSO super-frame plus its Ethernet header and VLAN tags.
	tapFrameMax = 65535 + 64
	// tapBatchSize caps how many frames one Read of a TAP returns: enough
	// for every segment of a 64 KiB super-frame.
	tapBatchSize = 64

	vnetFlagNeedsCsum = 1    // VIRTIO_NET_HDR_F_NEEDS_CSUM
	vnetGSONone       = 0    // VIRTIO_NET_HDR_GSO_NONE
	vnetGSOTCPv4      = 1    // VIRTIO_NET_HDR_GSO_TCPV4
	vnetGSOTCPv6      = 4    // VIRTIO_NET_HDR_GSO_TCPV6
	vnetGSOECN        = 0x80 // VIRTIO_NET_HDR_GSO_ECN

	tcpFlagFIN = 0x01
	tcpFlagPSH = 0x08
	tcpFlagCWR = 0x80
)

// tapOffloads are the offloads a TAP asks the kernel for. UDP segmentation
// (TUN_F_USO4/6) is left off: Read splits TCP only.
const tapOffloads = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6

// vnetHdr is a decoded struct virtio_net_hdr.
type vnetHdr struct {
	flags      uint8
	gsoType    uint8
	hdrLen     uint16
	gsoSize    uint16
	csumStart  uint16
	csumOffset uint16
}

// decodeVnetHdr decodes the virtio-net header at the start of b, which
// holds at least vnetHdrLen bytes.
func decodeVnetHdr(b []byte) vnetHdr {
	_ = b[vnetHdrLen-1]
	return vnetHdr{
		flags:      b[0],
		gsoType:    b[1],
		hdrLen:     binary.NativeEndian.Uint16(b[2:]),
		gsoSize:    binary.NativeEndian.Uint16(b[4:]),
		csumStart:  binary.NativeEndian.Uint16(b[6:]),
		csumOffset: binary.NativeEndian.Uint16(b[8:]),
	}
}

// openTAP opens the TAP device name with IFF_VNET_HDR and offloads. A device
// that existed keeps its persist flag; one created here is not persistent
// and vanishes with the descriptor. Without offloads (TUNSETOFFLOAD
// refused) frames still come with a virtio-net header, always empty.
func openTAP(name string, exists bool) (*TunTap, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, openError(TAP, name, err)
	}
	closeFD := true
	defer func() {
		if closeFD {
			unix.Close(fd)
		}
	}()
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return nil, fmt.Errorf("open %s %q: %w", TAP, name, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return nil, openError(TAP, name, os.NewSyscallError("ioctl", err))
	}
	got := ifr.Name()
	persist := 0
	if exists {
		persist = 1
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, persist); err != nil {
		return nil, fmt.Errorf("open %s %q: set persist flag: %w", TAP, name, os.NewSyscallError("ioctl", err))
	}
	offloads := true
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tapOffloads); err != nil {
		offloads = false // frames come whole and checksummed; the header stays
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("open %s %q: set non-blocking: %w", TAP, name, err)
	}
	// A non-blocking descriptor makes a File that uses the runtime poller.
	f := os.NewFile(uintptr(fd), "/dev/net/tun")
	closeFD = false // f owns fd now
	t, err := newTAP(f, got, !exists, offloads)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s %q: %w", TAP, name, err)
	}
	return t, nil
}

// newTAP makes the TunTap of a TAP opened with IFF_VNET_HDR as f, which
// reads and writes frames behind a virtio-net header.
func newTAP(f *os.File, name string, created, offloads bool) (*TunTap, error) {
	raw, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	t := &TunTap{kind: TAP, name: name, created: created, file: f, raw: raw, offloads: offloads}
	t.frame = make([]byte, vnetHdrLen+tapFrameMax)
	t.wscratch = make([]byte, vnetHdrLen+tapFrameMax)
	t.readFn = t.readReady
	return t, nil
}

// tapClose closes a TAP. A device that existed before Open gets its
// offloads turned off again, so that a later user without IFF_VNET_HDR is
// not handed partial checksums and super-frames.
func (t *TunTap) tapClose() error {
	if !t.created && t.offloads {
		_ = t.raw.Control(func(fd uintptr) { _ = unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, 0) })
	}
	return t.file.Close()
}

// errBadFrame reports a frame with a virtio-net header Read cannot act on.
var errBadFrame = errors.New("malformed or unsupported offload frame")

// completeChecksum fills in the checksum of a frame whose checksum the
// kernel left partial (VIRTIO_NET_HDR_F_NEEDS_CSUM): the one's-complement
// sum of frame[start:], seeded with the pseudo-header sum the kernel left
// in the field at start+off, folded and complemented into that field.
func completeChecksum(frame []byte, start, off int) error {
	at := start + off
	if start >= len(frame) || at+2 > len(frame) {
		return fmt.Errorf("checksum at %d+%d outside a frame of %d bytes: %w", start, off, len(frame), errBadFrame)
	}
	seed := uint64(binary.BigEndian.Uint16(frame[at:]))
	frame[at], frame[at+1] = 0, 0
	c := ^packet.ChecksumFold(packet.ChecksumAdd(seed, frame[start:]))
	if c == 0 {
		c = 0xffff // as the kernel does: 0 means no checksum in UDP
	}
	binary.BigEndian.PutUint16(frame[at:], c)
	return nil
}

// tcpSplit cuts a TCP GSO super-frame into segments of at most gsoSize
// payload bytes, each a complete frame with its own headers and
// checksums. It works in place over the super-frame, one segment at a time,
// so that segments can be handed out across several Reads.
type tcpSplit struct {
	frame   []byte // the super-frame; nil when no segment is pending
	ip      int    // offset of the IP header
	l4      int    // offset of the TCP header
	hdrLen  int    // length of every header up to the TCP payload
	gsoSize int
	v6      bool
	seq     uint32 // sequence number of the first segment
	id      uint16 // IPv4 ID of the first segment
	flags   uint8  // TCP flags of the super-frame
	next    int    // offset in frame of the next segment's payload
	seg     int    // index of the next segment
}

// start prepares the split of frame, described by hdr (gso_type TCPV4 or
// TCPV6, with or without the ECN bit). It returns an error wrapping
// errBadFrame if the headers do not hold together.
func (s *tcpSplit) start(frame []byte, hdr vnetHdr) error {
	*s = tcpSplit{}
	ip, et, ok := etherPayload(frame)
	if !ok {
		return fmt.Errorf("TCP GSO frame without IP: %w", errBadFrame)
	}
	gso := hdr.gsoType &^ vnetGSOECN
	l4 := int(hdr.csumStart)
	switch {
	case gso == vnetGSOTCPv4 && et == packet.EtherTypeIPv4:
		if len(frame) < ip+20 || frame[ip]>>4 != 4 || ip+int(frame[ip]&0xf)*4 != l4 || frame[ip]&0xf < 5 || frame[ip+9] != unix.IPPROTO_TCP {
			return fmt.Errorf("TCPv4 GSO frame with a bad IPv4 header: %w", errBadFrame)
		}
	case gso == vnetGSOTCPv6 && et == packet.EtherTypeIPv6:
		if len(frame) < ip+40 || frame[ip]>>4 != 6 || l4 < ip+40 {
			return fmt.Errorf("TCPv6 GSO frame with a bad IPv6 header: %w", errBadFrame)
		}
		s.v6 = true
	default:
		return fmt.Errorf("GSO type %#x on ethertype %#04x: %w", hdr.gsoType, et, errBadFrame)
	}
	// hdr_len may span more than the headers (the kernel's linear part):
	// the TCP header tells where the payload starts.
	if l4+20 > len(frame) || hdr.csumOffset != 16 {
		return fmt.Errorf("TCP GSO frame with checksum at %d+%d in %d bytes: %w", l4, hdr.csumOffset, len(frame), errBadFrame)
	}
	tcpLen := int(frame[l4+12]>>4) * 4
	if tcpLen < 20 || l4+tcpLen >= len(frame) || hdr.gsoSize == 0 {
		return fmt.Errorf("TCP GSO frame with header of %d bytes, %d in all, segments of %d: %w", tcpLen, len(frame), hdr.gsoSize, errBadFrame)
	}
	// The longest segment must fit its IP header's length field (a frame
	// longer than an IP packet, with a gso_size as long, is no super-frame
	// a kernel sends; its segment's length would wrap).
	maxIP := 0xffff
	if s.v6 {
		maxIP += 40
	}
	if l4+tcpLen+min(int(hdr.gsoSize), len(frame)-l4-tcpLen)-ip > maxIP {
		return fmt.Errorf("TCP GSO frame of %d bytes with segments of %d: longer than an IP packet: %w", len(frame), hdr.gsoSize, errBadFrame)
	}
	s.frame, s.ip, s.l4, s.hdrLen, s.gsoSize = frame, ip, l4, l4+tcpLen, int(hdr.gsoSize)
	s.seq = binary.BigEndian.Uint32(frame[l4+4:])
	s.flags = frame[l4+13]
	if !s.v6 {
		s.id = binary.BigEndian.Uint16(frame[ip+4:])
	}
	s.next = s.hdrLen
	return nil
}

// pending reports whether segments are left.
func (s *tcpSplit) pending() bool { return s.frame != nil }

// nextLen is the length of the next segment.
func (s *tcpSplit) nextLen() int {
	return s.hdrLen + min(s.gsoSize, len(s.frame)-s.next)
}

// drop forgets the super-frame.
func (s *tcpSplit) drop() { s.frame = nil }

// segment writes the next segment into out, which holds at least nextLen
// bytes, and returns its length.
func (s *tcpSplit) segment(out []byte) int {
	f := s.frame
	end := min(s.next+s.gsoSize, len(f))
	n := s.hdrLen + end - s.next
	last := end == len(f)
	copy(out, f[:s.hdrLen])
	copy(out[s.hdrLen:n], f[s.next:end])
	ip, l4 := out[s.ip:n], out[s.l4:n]

	if s.v6 {
		binary.BigEndian.PutUint16(ip[4:], uint16(n-s.ip-40))
	} else {
		binary.BigEndian.PutUint16(ip[2:], uint16(n-s.ip))
		binary.BigEndian.PutUint16(ip[4:], s.id+uint16(s.seg))
		setIPv4Checksum(ip, int(ip[0]&0xf)*4)
	}
	binary.BigEndian.PutUint32(l4[4:], s.seq+uint32(s.next-s.hdrLen))
	flags := s.flags
	if !last {
		flags &^= tcpFlagFIN | tcpFlagPSH
	}
	if s.seg > 0 {
		flags &^= tcpFlagCWR
	}
	l4[13] = flags
	l4[16], l4[17] = 0, 0
	binary.BigEndian.PutUint16(l4[16:], ^packet.ChecksumFold(packet.ChecksumAdd(tcpPseudoSum(ip, s.v6, len(l4)), l4)))

	s.next = end
	s.seg++
	if last {
		s.frame = nil
	}
	return n
}

// setIPv4Checksum recomputes the header checksum of the IPv4 header
// ip[:ihl].
func setIPv4Checksum(ip []byte, ihl int) {
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ^packet.ChecksumFold(packet.ChecksumAdd(0, ip[:ihl])))
}

// tcpPseudoSum is the unfolded sum of the TCP pseudo-header of the IP
// packet ip (IPv6 if v6, else IPv4) for a TCP length tcpLen.
func tcpPseudoSum(ip []byte, v6 bool, tcpLen int) uint64 {
	var sum uint64
	if v6 {
		sum = packet.ChecksumAdd(0, ip[8:40]) // source and destination
	} else {
		sum = packet.ChecksumAdd(0, ip[12:20])
	}
	return sum + unix.IPPROTO_TCP + uint64(tcpLen)
}
