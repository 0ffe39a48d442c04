package quictun

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/quictun/quictun/device"
)

// stateLog records the calls of ClientConfig.StateChanged.
type stateLog struct {
	mu     sync.Mutex
	states []ClientState
	errs   []error
	// status is Client.Status().State read inside the callback, which
	// must already be the new state.
	status []ClientState
	cl     *Client
}

func (l *stateLog) changed(s ClientState, err error) {
	l.mu.Lock()
	cl := l.cl
	l.mu.Unlock()
	var st ClientState = -1
	if cl != nil {
		st = cl.Status().State // must not deadlock: called without the lock
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.states = append(l.states, s)
	l.errs = append(l.errs, err)
	l.status = append(l.status, st)
}

func (l *stateLog) snapshot() ([]ClientState, []error, []ClientState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ClientState(nil), l.states...), append([]error(nil), l.errs...), append([]ClientState(nil), l.status...)
}

// waitState waits until the log's last state is want.
func (l *stateLog) waitState(t *testing.T, want ClientState) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if s, _, _ := l.snapshot(); len(s) > 0 && s[len(s)-1] == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	s, _, _ := l.snapshot()
	t.Fatalf("states %v, want the last to be %v", s, want)
}

// TestClientStateChanged follows StateChanged through a client's life:
// connecting, up once the tunnel is up (the device is set up by then),
// reconnecting with the reason when the server closes the connection, up
// again. Each call sees Status already in the
// new state.
func TestClientStateChanged(t *testing.T) {
	s := startServer(t, device.TUN, ServerConfig{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
	})
	log := &stateLog{}
	c := startClient(t, s, "client1", "ca", ClientConfig{StateChanged: log.changed}, false)
	log.mu.Lock()
	log.cl = c.cl
	log.mu.Unlock()
	log.waitState(t, StateUp)
	if c.cl.Device() == nil {
		t.Fatal("StateUp reported before the device was set up")
	}
	s.session("client1").conn.CloseWithError(CloseNormal, "test closes it")
	log.waitState(t, StateReconnecting)
	log.waitState(t, StateUp)
	states, errs, status := log.snapshot()
	want := []ClientState{StateConnecting, StateUp, StateReconnecting, StateUp}
	if len(states) != len(want) {
		t.Fatalf("states %v, want %v", states, want)
	}
	for i := range want {
		if states[i] != want[i] {
			t.Fatalf("states %v, want %v", states, want)
		}
		if i > 0 && status[i] != states[i] { // the first call comes before log.cl is set
			t.Errorf("call %d (%v): Status().State was %v", i, states[i], status[i])
		}
	}
	if errs[2] == nil {
		t.Error("StateReconnecting without the reason the tunnel went down")
	}
	if errs[1] != nil || errs[3] != nil {
		t.Errorf("StateUp with an error: %v, %v", errs[1], errs[3])
	}
}
