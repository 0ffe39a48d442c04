package quictun

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/quictun/quictun/device"
)

// TestClientOnUp: OnUp is called when the tunnel comes up and again at
// every reconnection, with the Assignment the device was set up from.
func TestClientOnUp(t *testing.T) {
	s := startServer(t, device.TUN, ServerConfig{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
		Routes:   []netip.Prefix{netip.MustParsePrefix("192.168.77.0/24")},
	})
	calls := make(chan Assignment, 10)
	c := startClient(t, s, "client1", "ca", ClientConfig{OnUp: func(a Assignment) { calls <- a }}, true)
	next := func(what string) Assignment {
		t.Helper()
		select {
		case got := <-calls:
			return got
		case <-time.After(10 * time.Second):
			t.Fatalf("OnUp not called for the %s", what)
			return Assignment{}
		}
	}
	check := func(what string, got Assignment) {
		t.Helper()
		if !slices.Equal(got.Addresses, c.a.Addresses) || !slices.Equal(got.Routes, []netip.Prefix{netip.MustParsePrefix("192.168.77.0/24")}) ||
			!slices.Equal(got.Gateways, []netip.Addr{netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("fd77::1")}) {
			t.Errorf("%s: OnUp got %+v, want the device's assignment %+v with the server's route and gateways", what, got, c.a)
		}
	}
	check("first connection", next("first connection"))
	conn := c.cl.conn.Load()
	if conn == nil {
		t.Fatal("no connection after OnUp")
	}
	conn.CloseWithError(CloseNormal, "test: reconnect")
	check("reconnection", next("reconnection"))
	select {
	case got := <-calls:
		t.Errorf("a third OnUp call without a reconnection: %+v", got)
	case <-time.After(200 * time.Millisecond):
	}
}
