package quictun

import (
	"net/netip"
	"slices"
	"sync"

	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/quictun/internal/wire"
)

// liveConfig holds the settings of a running server that change without a
// restart: the routes pushed to clients and the pools new clients get
// addresses from. ServerConfig's Routes and Pools are only its start.
type liveConfig struct {
	mu     sync.Mutex
	routes []netip.Prefix // guarded by mu; replaced, never changed in place
	pools  []netip.Prefix // guarded by mu; replaced, never changed in place
	// routesChanged is closed (and replaced) when routes change, so every
	// session's pusher wakes without the server knowing its sessions.
	routesChanged chan struct{} // guarded by mu
}

func newLiveConfig(cfg ServerConfig) *liveConfig {
	return &liveConfig{
		routes:        slices.Clone(cfg.Routes),
		pools:         slices.Clone(cfg.Pools),
		routesChanged: make(chan struct{}),
	}
}

// pushedRoutes returns the routes to push now and a channel closed when
// they change. The slice must not be modified.
func (l *liveConfig) pushedRoutes() ([]netip.Prefix, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.routes, l.routesChanged
}

// addressPools returns the pools new clients get addresses from now. The
// slice must not be modified.
func (l *liveConfig) addressPools() []netip.Prefix {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pools
}

// SetRoutes replaces the routes the server pushes (ServerConfig.Routes):
// clients that connect from now on get them in their config, and every
// connected client is sent the new list over its control stream (a
// "routes" message, docs/PROTOCOL.md) and applies it. The hub's own
// forwarding does not change: pushed routes lead to the server's device,
// unlike the routes in client certificates. A list equal to the current
// one as a set changes nothing. routes must be networks (no host bits);
// otherwise SetRoutes returns a *ConfigError for "Routes" and changes
// nothing. It may be called at any time, also before Serve, and does not
// wait for clients.
func (s *Server) SetRoutes(routes []netip.Prefix) error {
	if err := checkNetworks("Routes", routes); err != nil {
		return err
	}
	routes = uniquePrefixes(routes)
	l := s.live
	l.mu.Lock()
	old := l.routes
	if samePrefixes(old, routes) {
		l.mu.Unlock()
		return nil
	}
	l.routes = routes
	close(l.routesChanged)
	l.routesChanged = make(chan struct{})
	l.mu.Unlock()
	add, remove := diffPrefixes(old, routes)
	var arr [64]*session
	s.log.Info("pushed routes changed", "routes", fmtPrefixes(routes), "added", fmtPrefixes(add),
		"removed", fmtPrefixes(remove), "clients", len(s.readySessions(arr[:0], nil)))
	return nil
}

// SetPools replaces the pools that clients without an address in their
// certificate get one from (ServerConfig.Pools), checked as Validate
// checks them; a bad list returns a *ConfigError for "Pools" and changes
// nothing. Connected clients keep the addresses they have; a client that
// connects from now on, also one that reconnects, is assigned from the new
// pools (the same address again only if its pool is still there).
func (s *Server) SetPools(pools []netip.Prefix) error {
	if err := checkPools(s.mode, s.cfg.Networks, pools); err != nil {
		return err
	}
	pools = slices.Clone(pools)
	l := s.live
	l.mu.Lock()
	same := slices.Equal(l.pools, pools)
	l.pools = pools
	l.mu.Unlock()
	if !same {
		s.log.Info("address pools changed; connected clients keep their addresses", "pools", fmtPrefixes(pools))
	}
	return nil
}

// checkNetworks checks that every prefix is a network a device can route
// (as device.LinkConfig wants them): valid, no host bits, IPv4 not
// written as IPv4-mapped IPv6 (a Prefix never carries a zone). It returns a *ConfigError for field.
func checkNetworks(field string, ps []netip.Prefix) error {
	for _, p := range ps {
		switch {
		case !p.IsValid():
			return configErr(field, "%v is not a valid network", p)
		case p.Addr().Is4In6():
			return configErr(field, "%s is an IPv4-mapped IPv6 prefix; write it as IPv4", p)
		case p != p.Masked():
			return configErr(field, "%s has host bits set; did you mean %s?", p, p.Masked())
		}
	}
	return nil
}

// checkPools checks address pools for a server of mode with networks.
func checkPools(mode device.Kind, networks, pools []netip.Prefix) error {
	if err := checkNetworks("Pools", pools); err != nil {
		return err
	}
	for _, p := range pools {
		if mode == device.TUN && networkOf(networks, p.Addr()) == (netip.Prefix{}) {
			return configErr("Pools", "%s is outside the server's networks (%s): clients must get addresses the server can reach", p, fmtPrefixes(networks))
		}
	}
	return nil
}

// pushRoutes sends the client the server's pushed routes each time they
// differ from what it was last sent (the config's at first), until the
// connection ends. Only the latest list is sent: changes that come
// quickly one after another reach the client as one.
func (ss *session) pushRoutes() {
	for {
		routes, changed := ss.srv.live.pushedRoutes()
		if !samePrefixes(routes, ss.pushed) {
			err := wire.WriteControl(ss.stream, &wire.ControlMsg{Type: wire.MsgRoutes, Routes: routes})
			if err != nil {
				if ss.conn.Context().Err() == nil {
					ss.log.Warn("could not send the client its new routes", "err", err)
				}
				return
			}
			ss.pushed = routes
			ss.log.Debug("sent the client its new routes", "routes", fmtPrefixes(routes))
		}
		select {
		case <-ss.conn.Context().Done():
			return
		case <-changed:
		}
	}
}

// uniquePrefixes returns a copy of ps without repeats, in their order.
func uniquePrefixes(ps []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// samePrefixes reports whether a and b hold the same prefixes, in any
// order and with any repeats.
func samePrefixes(a, b []netip.Prefix) bool {
	add, remove := diffPrefixes(a, b)
	return len(add) == 0 && len(remove) == 0
}

// diffPrefixes returns what going from old to cur adds and removes, each
// without repeats, in the order of cur and old.
func diffPrefixes(old, cur []netip.Prefix) (add, remove []netip.Prefix) {
	for _, p := range cur {
		if !slices.Contains(old, p) && !slices.Contains(add, p) {
			add = append(add, p)
		}
	}
	for _, p := range old {
		if !slices.Contains(cur, p) && !slices.Contains(remove, p) {
			remove = append(remove, p)
		}
	}
	return add, remove
}
