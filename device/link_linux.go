package device

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Configure applies cfg to the link named name and brings it up. It returns
// an undo function that removes exactly what Configure added (addresses,
// routes, bridge membership), restores what it changed (MTU, MAC, the
// disable_ipv6 switch) and sets the link down if it was down before; on
// error it has already undone its partial work, so nothing is left
// half-configured.
//
// Everything in cfg is checked before the link is changed. The undo
// function runs at most once (later calls return the first result), does
// nothing if the link is gone (its addresses and routes went with it), and
// must run in the same network namespace as Configure.
func Configure(name string, cfg LinkConfig) (undo func() error, err error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("configure %s: %w", name, err)
	}
	link, err := linkByName(name)
	if err != nil {
		return nil, fmt.Errorf("configure %s: %w", name, err)
	}
	attrs := link.Attrs()
	if (cfg.MAC != nil || cfg.Bridge != "") && attrs.EncapType != "ether" {
		what := fmt.Sprintf("a %s interface without Ethernet", link.Type())
		if tt, ok := link.(*netlink.Tuntap); ok && tt.Mode == netlink.TUNTAP_MODE_TUN {
			what = "a TUN device"
		}
		return nil, fmt.Errorf("configure %s: it is %s; MAC and bridge apply to TAP devices only", name, what)
	}
	var bridge *netlink.Bridge
	if cfg.Bridge != "" {
		if bridge, err = bridgeByName(cfg.Bridge); err != nil {
			return nil, fmt.Errorf("configure %s: %w", name, err)
		}
	}
	v6 := hasIPv6(cfg.Addrs)
	if mtu := nonZero(cfg.MTU, attrs.MTU); v6 && mtu < MinIPv6MTU {
		return nil, fmt.Errorf("configure %s: its MTU is %d: IPv6 needs an MTU of at least %d", name, mtu, MinIPv6MTU)
	}

	var s undoStack
	defer func() {
		if err != nil {
			if uerr := s.run(); uerr != nil {
				err = errors.Join(err, fmt.Errorf("undo partial configuration of %s: %w", name, uerr))
			}
		}
	}()

	if v6 {
		if err := enableIPv6(name, &s); err != nil {
			return nil, fmt.Errorf("configure %s: %w", name, err)
		}
	}
	if cfg.MTU != 0 && cfg.MTU != attrs.MTU {
		if err := netlink.LinkSetMTU(link, cfg.MTU); err != nil {
			return nil, fmt.Errorf("configure %s: set MTU %d: %w", name, cfg.MTU, err)
		}
		old := attrs.MTU
		s.push(func() error { return ignoreGone(netlink.LinkSetMTU(link, old)) })
	}
	if cfg.MAC != nil && !bytes.Equal(cfg.MAC, attrs.HardwareAddr) {
		if err := netlink.LinkSetHardwareAddr(link, cfg.MAC); err != nil {
			return nil, fmt.Errorf("configure %s: set MAC %s: %w", name, cfg.MAC, err)
		}
		old := attrs.HardwareAddr
		s.push(func() error { return ignoreGone(netlink.LinkSetHardwareAddr(link, old)) })
	}
	if bridge != nil && attrs.MasterIndex != bridge.Index {
		if err := netlink.LinkSetMaster(link, bridge); err != nil {
			return nil, fmt.Errorf("configure %s: add to bridge %s: %w", name, bridge.Name, err)
		}
		old := attrs.MasterIndex
		s.push(func() error {
			if old == 0 {
				return ignoreGone(netlink.LinkSetNoMaster(link))
			}
			return ignoreGone(netlink.LinkSetMasterByIndex(link, old))
		})
	}
	// Up before the addresses: IPv6 flushes addresses when a link goes down,
	// so undo removes them first and then restores the down state.
	if attrs.Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(link); err != nil {
			return nil, fmt.Errorf("configure %s: set up: %w", name, err)
		}
		s.push(func() error { return ignoreGone(netlink.LinkSetDown(link)) })
	}
	if err := addAddrs(link, cfg.Addrs, &s); err != nil {
		return nil, fmt.Errorf("configure %s: %w", name, err)
	}
	for _, r := range cfg.Routes {
		if err := addRoute(link, r, &s); err != nil {
			return nil, fmt.Errorf("configure %s: %w", name, err)
		}
	}
	return s.undoFunc(attrs.Index), nil
}

// AddRoutes adds routes through the link named name (on-link, no gateway),
// skipping those that already exist through it. It returns an undo function
// that removes the routes it added; on error it has already removed them.
func AddRoutes(name string, routes []netip.Prefix) (undo func() error, err error) {
	if err := checkRoutes(routes); err != nil {
		return nil, fmt.Errorf("add routes via %s: %w", name, err)
	}
	link, err := linkByName(name)
	if err != nil {
		return nil, fmt.Errorf("add routes via %s: %w", name, err)
	}
	var s undoStack
	for _, r := range routes {
		if err := addRoute(link, r, &s); err != nil {
			err = fmt.Errorf("add routes via %s: %w", name, err)
			if uerr := s.run(); uerr != nil {
				err = errors.Join(err, fmt.Errorf("undo partial route changes: %w", uerr))
			}
			return nil, err
		}
	}
	return s.undoFunc(link.Attrs().Index), nil
}

// RemoveRoutes removes routes through the link named name that were added
// by AddRoutes, Configure or `ip route add`; routes the kernel made for the
// link's own addresses and routes that are not there are left alone.
func RemoveRoutes(name string, routes []netip.Prefix) error {
	if err := checkRoutes(routes); err != nil {
		return fmt.Errorf("remove routes via %s: %w", name, err)
	}
	link, err := linkByName(name)
	if err != nil {
		return fmt.Errorf("remove routes via %s: %w", name, err)
	}
	var errs []error
	for _, r := range routes {
		route := devRoute(link.Attrs().Index, r)
		if err := ignoreGone(netlink.RouteDel(&route)); err != nil {
			errs = append(errs, fmt.Errorf("remove route %s via %s: %w", r, name, err))
		}
	}
	return errors.Join(errs...)
}

// linkByName looks a link up, with a clear error when it does not exist.
func linkByName(name string) (netlink.Link, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		if isLinkNotFound(err) {
			return nil, fmt.Errorf("no interface named %q", name)
		}
		return nil, fmt.Errorf("look up interface %q: %w", name, err)
	}
	return link, nil
}

// bridgeByName finds the bridge name, or says how to make it.
func bridgeByName(name string) (*netlink.Bridge, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		if isLinkNotFound(err) {
			return nil, fmt.Errorf("bridge %q does not exist; create it with `ip link add %s type bridge`", name, name)
		}
		return nil, fmt.Errorf("look up bridge %q: %w", name, err)
	}
	br, ok := link.(*netlink.Bridge)
	if !ok {
		return nil, fmt.Errorf("%q is a %s interface, not a bridge; name a bridge made with `ip link add NAME type bridge`", name, link.Type())
	}
	return br, nil
}

// enableIPv6 clears net.ipv6.conf.<name>.disable_ipv6 if it is set, and
// pushes the step that sets it again.
func enableIPv6(name string, s *undoStack) error {
	path := "/proc/sys/net/ipv6/conf/" + name + "/disable_ipv6"
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("enable IPv6: %w", err)
	}
	if strings.TrimSpace(string(b)) == "0" {
		return nil
	}
	if err := os.WriteFile(path, []byte("0\n"), 0); err != nil {
		return fmt.Errorf("enable IPv6: %w", err)
	}
	s.push(func() error {
		err := os.WriteFile(path, b, 0)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	})
	return nil
}

// addAddrs adds the addresses the link does not have yet.
func addAddrs(link netlink.Link, addrs []netip.Prefix, s *undoStack) error {
	if len(addrs) == 0 {
		return nil
	}
	have, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	for _, p := range addrs {
		if hasAddr(have, p) {
			continue
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("add address %s: %w", p, err)
		}
		s.push(func() error { return ignoreGone(netlink.AddrDel(link, addr)) })
	}
	return nil
}

// hasAddr reports whether have holds the address and prefix length of p.
func hasAddr(have []netlink.Addr, p netip.Prefix) bool {
	for _, a := range have {
		if a.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		if ok && ip.Unmap() == p.Addr() && ones == p.Bits() {
			return true
		}
	}
	return false
}

// devRoute is the on-link route to p through the link with index idx, as
// `ip route add p dev NAME` makes it.
func devRoute(idx int, p netip.Prefix) netlink.Route {
	r := netlink.Route{
		LinkIndex: idx,
		Dst:       &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Table:     unix.RT_TABLE_MAIN,
		Protocol:  unix.RTPROT_BOOT,
		Scope:     netlink.SCOPE_UNIVERSE,
	}
	if p.Addr().Is4() {
		r.Scope = netlink.SCOPE_LINK
	}
	return r
}

// addRoute adds the on-link route to p through link unless it is there.
func addRoute(link netlink.Link, p netip.Prefix, s *undoStack) error {
	idx := link.Attrs().Index
	route := devRoute(idx, p)
	family := netlink.FAMILY_V6
	if p.Addr().Is4() {
		family = netlink.FAMILY_V4
	}
	existing, err := netlink.RouteListFiltered(family,
		&netlink.Route{Dst: route.Dst, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list routes to %s: %w", p, err)
	}
	for _, r := range existing {
		if routeUses(r, idx) {
			return nil
		}
	}
	if err := netlink.RouteAdd(&route); err != nil {
		if errors.Is(err, unix.EEXIST) && len(existing) > 0 {
			return fmt.Errorf("add route %s: a route to it already exists via %s", p, routeVia(existing[0]))
		}
		if errors.Is(err, unix.ENETDOWN) {
			return fmt.Errorf("add route %s: %w (bring %s up first)", p, err, link.Attrs().Name)
		}
		return fmt.Errorf("add route %s: %w", p, err)
	}
	s.push(func() error { return ignoreGone(netlink.RouteDel(&route)) })
	return nil
}

// routeUses reports whether r goes out through the link with index idx.
func routeUses(r netlink.Route, idx int) bool {
	if r.LinkIndex == idx {
		return true
	}
	for _, nh := range r.MultiPath {
		if nh.LinkIndex == idx {
			return true
		}
	}
	return false
}

// routeVia describes where r leads, for error messages.
func routeVia(r netlink.Route) string {
	dev := fmt.Sprintf("interface index %d", r.LinkIndex)
	if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
		dev = l.Attrs().Name
	}
	if r.Gw != nil {
		return r.Gw.String() + " dev " + dev
	}
	return dev
}

// isLinkNotFound reports whether err says a link does not exist.
func isLinkNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

// ignoreGone drops the errors that mean the thing to remove is gone already.
func ignoreGone(err error) error {
	if err == nil || isLinkNotFound(err) || errors.Is(err, unix.ESRCH) ||
		errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// hasIPv6 reports whether any prefix is IPv6.
func hasIPv6(prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Addr().Is6() {
			return true
		}
	}
	return false
}

// nonZero returns a if it is not zero, else b.
func nonZero(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// undoStack collects the steps that reverse changes, run last first.
type undoStack struct {
	steps []func() error
}

func (s *undoStack) push(step func() error) { s.steps = append(s.steps, step) }

// run runs the steps, last first, all of them even if some fail.
func (s *undoStack) run() error {
	var errs []error
	for i := len(s.steps) - 1; i >= 0; i-- {
		if err := s.steps[i](); err != nil {
			errs = append(errs, err)
		}
	}
	s.steps = nil
	return errors.Join(errs...)
}

// undoFunc returns a function that runs the steps once, unless the link with
// index idx is gone by then.
func (s *undoStack) undoFunc(idx int) func() error {
	steps := &undoStack{steps: s.steps}
	var (
		once sync.Once
		err  error
	)
	return func() error {
		once.Do(func() {
			if _, lerr := netlink.LinkByIndex(idx); lerr != nil && isLinkNotFound(lerr) {
				return
			}
			err = steps.run()
		})
		return err
	}
}
