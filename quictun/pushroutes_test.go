package quictun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quictun/quictun/device"
)

var (
	route1 = netip.MustParsePrefix("192.168.10.0/24")
	route2 = netip.MustParsePrefix("fd00:10::/64")
	route3 = netip.MustParsePrefix("192.168.30.0/24")
)

// routeCall is one call of a ClientConfig.UpdateRoutes.
type routeCall struct{ add, remove []netip.Prefix }

// routeRecorder is an UpdateRoutes that sends each call on calls and
// fails while failNext is set (then clears it).
type routeRecorder struct {
	calls    chan routeCall
	mu       sync.Mutex
	failNext bool // guarded by mu
}

func newRouteRecorder() *routeRecorder { return &routeRecorder{calls: make(chan routeCall, 16)} }

func (r *routeRecorder) update(add, remove []netip.Prefix) error {
	r.calls <- routeCall{slices.Clone(add), slices.Clone(remove)}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failNext {
		r.failNext = false
		return errors.New("test refuses this change")
	}
	return nil
}

// next waits up to 5 s for the next call and checks it.
func (r *routeRecorder) next(t *testing.T, add, remove []netip.Prefix) {
	t.Helper()
	select {
	case c := <-r.calls:
		if !slices.Equal(c.add, add) || !slices.Equal(c.remove, remove) {
			t.Fatalf("UpdateRoutes(add %v, remove %v), want add %v, remove %v", c.add, c.remove, add, remove)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no UpdateRoutes call within 5 s, want add %v, remove %v", add, remove)
	}
}

// none checks that no call comes within d.
func (r *routeRecorder) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case c := <-r.calls:
		t.Fatalf("unexpected UpdateRoutes(add %v, remove %v)", c.add, c.remove)
	case <-time.After(d):
	}
}

// waitClientRoutes waits up to 5 s until the client's Status shows want.
func waitClientRoutes(t *testing.T, cl *Client, want []netip.Prefix) {
	t.Helper()
	var got []netip.Prefix
	for range 500 {
		if got = cl.Status().Session.Routes; slices.Equal(got, want) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("client Status routes = %v, want %v", got, want)
}

// TestSetRoutesReachesConnectedClient changes the pushed routes while a
// client is connected: its UpdateRoutes gets the difference, its Status
// the new list, and the connection stays the same one and carries packets.
func TestSetRoutesReachesConnectedClient(t *testing.T) {
	var logs syncBuffer
	s := startServer(t, device.TUN, ServerConfig{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
		Routes:   []netip.Prefix{route1, route2},
	})
	rec := newRouteRecorder()
	c := startClient(t, s, "client1", "ca", ClientConfig{
		UpdateRoutes: rec.update, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	}, true)
	if !slices.Equal(c.a.Routes, []netip.Prefix{route1, route2}) {
		t.Fatalf("config routes = %v, want %v", c.a.Routes, []netip.Prefix{route1, route2})
	}
	waitClientRoutes(t, c.cl, []netip.Prefix{route1, route2})
	sess := s.session("client1")

	if err := s.srv.SetRoutes([]netip.Prefix{route2, route3}); err != nil {
		t.Fatal(err)
	}
	rec.next(t, []netip.Prefix{route3}, []netip.Prefix{route1})
	waitClientRoutes(t, c.cl, []netip.Prefix{route2, route3})
	if !strings.Contains(logs.String(), `msg="routes changed" routes=fd00:10::/64,192.168.30.0/24 added=192.168.30.0/24 removed=192.168.10.0/24 via="server push"`) {
		t.Errorf("client log lacks the change:\n%s", logs.String())
	}

	// The same set in another order, with a repeat, changes nothing.
	if err := s.srv.SetRoutes([]netip.Prefix{route3, route2, route3}); err != nil {
		t.Fatal(err)
	}
	rec.none(t, 300*time.Millisecond)

	// A failed change is asked for again, whole, at the next one.
	rec.mu.Lock()
	rec.failNext = true
	rec.mu.Unlock()
	if err := s.srv.SetRoutes([]netip.Prefix{route3}); err != nil {
		t.Fatal(err)
	}
	rec.next(t, nil, []netip.Prefix{route2})
	waitClientRoutes(t, c.cl, []netip.Prefix{route2, route3})
	if err := s.srv.SetRoutes([]netip.Prefix{route3, route1}); err != nil {
		t.Fatal(err)
	}
	rec.next(t, []netip.Prefix{route1}, []netip.Prefix{route2})
	waitClientRoutes(t, c.cl, []netip.Prefix{route3, route1})

	// No routes at all: everything goes.
	if err := s.srv.SetRoutes(nil); err != nil {
		t.Fatal(err)
	}
	rec.next(t, nil, []netip.Prefix{route3, route1})
	waitClientRoutes(t, c.cl, nil)

	if s.session("client1") != sess {
		t.Error("the route changes replaced the client's session")
	}
	c.peer.write(t, udp4("10.77.0.11", "10.77.0.1", []byte("after route changes"), true))
	if s.peer.next(5*time.Second, hasPayload([]byte("after route changes"))) == nil {
		t.Error("no packet through the tunnel after the route changes")
	}
}

// TestReconnectAppliesNewRoutes changes the server's routes without
// telling connected clients, then drops the connection: the client's
// redial brings a config with the new routes, and the client applies the
// difference although no "routes" message was sent.
func TestReconnectAppliesNewRoutes(t *testing.T) {
	var logs syncBuffer
	s := startServer(t, device.TUN, ServerConfig{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
		Routes:   []netip.Prefix{route1},
	})
	rec := newRouteRecorder()
	c := startClient(t, s, "client1", "ca", ClientConfig{
		UpdateRoutes: rec.update, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	}, true)
	waitClientRoutes(t, c.cl, []netip.Prefix{route1})
	old := s.session("client1")

	// As SetRoutes, but without waking the pushers: only a new config can
	// carry the change.
	s.srv.live.mu.Lock()
	s.srv.live.routes = []netip.Prefix{route2, route3}
	s.srv.live.mu.Unlock()
	rec.none(t, 200*time.Millisecond)
	old.conn.CloseWithError(CloseShutdown, "test drops the connection")

	rec.next(t, []netip.Prefix{route2, route3}, []netip.Prefix{route1})
	waitClientRoutes(t, c.cl, []netip.Prefix{route2, route3})
	if !strings.Contains(logs.String(), `added=fd00:10::/64,192.168.30.0/24 removed=192.168.10.0/24 via=reconnect`) {
		t.Errorf("client log lacks the change at reconnect:\n%s", logs.String())
	}
	for i := 0; i < 500 && (s.session("client1") == old || s.session("client1") == nil); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if ss := s.session("client1"); ss == old || ss == nil {
		t.Fatal("the client did not reconnect")
	}
	c.peer.write(t, udp4("10.77.0.11", "10.77.0.1", []byte("after reconnect"), true))
	if s.peer.next(5*time.Second, hasPayload([]byte("after reconnect"))) == nil {
		t.Error("no packet through the tunnel after the reconnect")
	}
}

// TestSetRoutesWhileClientsConnect changes the routes many times while
// clients are in the middle of connecting: however the changes fall
// between a client's config and its session starting, each ends with the
// server's last list.
func TestSetRoutesWhileClientsConnect(t *testing.T) {
	s := startServer(t, device.TUN, ServerConfig{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
		Routes:   []netip.Prefix{route1},
	})
	c1 := startClient(t, s, "client1", "ca", ClientConfig{UpdateRoutes: func(_, _ []netip.Prefix) error { return nil }}, false)
	c2 := startClient(t, s, "client2", "ca", ClientConfig{UpdateRoutes: func(_, _ []netip.Prefix) error { return nil }}, false)
	// Change the routes every 2 ms until both are up (at most 1000
	// times), then 20 times more.
	var last []netip.Prefix
	more := 20
	for i := 0; i < 1000 && more > 0; i++ {
		last = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 24), route2}
		if err := s.srv.SetRoutes(last); err != nil {
			t.Fatal(err)
		}
		if c1.cl.Status().State == StateUp && c2.cl.Status().State == StateUp {
			more--
		}
		time.Sleep(2 * time.Millisecond)
	}
	waitClientRoutes(t, c1.cl, last)
	waitClientRoutes(t, c2.cl, last)
}

// TestSetRoutesDuringSetup changes the routes after the server sent a
// client its config and before the client said ready (while it sets up
// its device): the change must still reach it once its session runs.
func TestSetRoutesDuringSetup(t *testing.T) {
	s := startServer(t, device.TUN, ServerConfig{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
		Routes:   []netip.Prefix{route1},
	})
	rec := newRouteRecorder()
	var dev device.Device
	cl, err := NewClient(ClientConfig{
		Server: s.srv.Addr(), TLS: clientTLS(t, "client1", "ca"), UpdateRoutes: rec.update,
		SetupDevice: func(a Assignment) (device.Device, error) {
			if !slices.Equal(a.Routes, []netip.Prefix{route1}) {
				return nil, fmt.Errorf("config routes %v, want %v", a.Routes, route1)
			}
			if err := s.srv.SetRoutes([]netip.Prefix{route3}); err != nil {
				return nil, err
			}
			dev, _ = device.NewPipe(a.Mode, "setup", 16)
			return dev, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cl.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if dev != nil {
			dev.Close()
		}
		cl.Wait()
	}()
	rec.next(t, []netip.Prefix{route3}, []netip.Prefix{route1})
	waitClientRoutes(t, cl, []netip.Prefix{route3})
}

// TestSetRoutesRefusesBadInput checks that bad routes and pools are
// refused with a ConfigError naming the field, at NewServer and while
// running, and that a refused change changes nothing.
func TestSetRoutesRefusesBadInput(t *testing.T) {
	s := startServer(t, device.TUN, ServerConfig{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24")},
		Pools:    []netip.Prefix{netip.MustParsePrefix("10.77.0.128/25")},
		Routes:   []netip.Prefix{route1},
	})
	tests := []struct {
		name  string
		field string
		list  []netip.Prefix
		want  string
	}{
		{"route with host bits", "Routes", []netip.Prefix{route2, netip.MustParsePrefix("192.168.10.1/24")}, "did you mean 192.168.10.0/24"},
		{"invalid route", "Routes", []netip.Prefix{{}}, "not a valid network"},
		{"IPv4-mapped route", "Routes", []netip.Prefix{netip.MustParsePrefix("::ffff:192.168.1.0/120")}, "IPv4-mapped"},
		{"pool with host bits", "Pools", []netip.Prefix{netip.MustParsePrefix("10.77.0.129/25")}, "did you mean 10.77.0.128/25"},
		{"pool outside the networks", "Pools", []netip.Prefix{netip.MustParsePrefix("10.9.0.0/24")}, "outside the server's networks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(what string, err error) {
				t.Helper()
				var ce *ConfigError
				if !errors.As(err, &ce) || ce.Field != tt.field || !strings.Contains(ce.Msg, tt.want) {
					t.Errorf("%s = %v, want a ConfigError for %s containing %q", what, err, tt.field, tt.want)
				}
				if err != nil && strings.Contains(err.Error(), "--") {
					t.Errorf("%q names a command-line flag", err)
				}
			}
			cfg := ServerConfig{Mode: device.TUN, TLS: serverTLS(t), Listen: "127.0.0.1:0",
				Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24")}}
			set := s.srv.SetRoutes
			if tt.field == "Routes" {
				cfg.Routes = tt.list
			} else {
				cfg.Pools = tt.list
				set = s.srv.SetPools
			}
			srv, err := NewServer(cfg)
			if err == nil {
				srv.Close()
			}
			check("NewServer", err)
			check(fmt.Sprintf("Set%s", tt.field), set(tt.list))
		})
	}
	routes, _ := s.srv.live.pushedRoutes()
	if !slices.Equal(routes, []netip.Prefix{route1}) {
		t.Errorf("routes after refused changes = %v, want %v", routes, []netip.Prefix{route1})
	}
	if pools := s.srv.live.addressPools(); !slices.Equal(pools, []netip.Prefix{netip.MustParsePrefix("10.77.0.128/25")}) {
		t.Errorf("pools after refused changes = %v, want 10.77.0.128/25", pools)
	}
}

// TestSetPools changes the pools while a pool client is connected: it
// keeps its address; once it reconnects it is assigned from the new pool.
func TestSetPools(t *testing.T) {
	oldPool, newPool := netip.MustParsePrefix("10.77.0.128/26"), netip.MustParsePrefix("10.77.0.192/26")
	s := startServer(t, device.TUN, ServerConfig{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24")},
		Pools:    []netip.Prefix{oldPool},
	})
	c := startClient(t, s, "nopool", "ca", ClientConfig{}, true)
	addrOf := func() (netip.Addr, *session) {
		ss := s.session("nopool")
		if ss == nil || !ss.ready.Load() || len(ss.addrs) != 1 {
			return netip.Addr{}, ss
		}
		return ss.addrs[0].Addr(), ss
	}
	first, old := addrOf()
	if !oldPool.Contains(first) || c.a.Addresses[0].Addr() != first {
		t.Fatalf("pool client got %v (session %v), want one address in %s", c.a.Addresses, first, oldPool)
	}
	if err := s.srv.SetPools([]netip.Prefix{newPool}); err != nil {
		t.Fatal(err)
	}
	if a, ss := addrOf(); ss != old || a != first {
		t.Fatalf("after SetPools the connected client has %v (same session: %v), want %v", a, ss == old, first)
	}
	old.conn.CloseWithError(CloseShutdown, "test drops the connection")
	var a netip.Addr
	var ss *session
	for range 500 {
		if a, ss = addrOf(); ss != old && a.IsValid() {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ss == old || !newPool.Contains(a) {
		t.Fatalf("after reconnecting the client has %v (new session: %v), want an address in %s", a, ss != old, newPool)
	}
}
