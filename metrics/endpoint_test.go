package metrics

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCheckAddr(t *testing.T) {
	for _, tt := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:9477", true},
		{"[::1]:9477", true},
		{":9477", true},
		{"localhost:9477", true},
		{"127.0.0.1:0", true},
		{"127.0.0.1", false},
		{"9477", false},
		{"127.0.0.1:http", false},
		{"127.0.0.1:70000", false},
		{"127.0.0.1:", false},
		{"http://127.0.0.1:9477", false},
		{"", false},
	} {
		t.Run(tt.addr, func(t *testing.T) {
			err := CheckAddr(tt.addr)
			if (err == nil) != tt.ok {
				t.Errorf("CheckAddr(%q) = %v, want ok %v", tt.addr, err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), tt.addr) {
				t.Errorf("error %q does not name the address", err)
			}
		})
	}
}

// get fetches url and returns the status and body.
func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// TestEndpoint serves a real server's metrics over HTTP: /metrics in the
// text format with ours and the Go and process collectors', a second
// Listen on the same port fails with EADDRINUSE, and after Close nothing
// listens.
func TestEndpoint(t *testing.T) {
	s := startServer(t, "127.0.0.1:0")
	ep, err := Listen("127.0.0.1:0", NewRegistry(NewServerCollector(s.srv, Options{})), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ep.Start()
	base := "http://" + ep.Addr()

	code, body, hdr := get(t, base+Path)
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET %s: %d %s", Path, code, hdr.Get("Content-Type"))
	}
	for _, w := range []string{
		"\nquictun_sessions 0\n",
		`quictun_drops_total{reason="spoofed"} 0`,
		`quictun_handshake_duration_seconds_bucket{le="0.005"} 0`,
		`quictun_handshake_duration_seconds_bucket{le="+Inf"} 0`,
		"\ngo_goroutines ",
		"\nprocess_resident_memory_bytes ",
	} {
		if !strings.Contains(body, w) {
			t.Errorf("/metrics lacks %q", w)
		}
	}
	if code, _, _ := get(t, base+"/"); code != http.StatusOK {
		t.Errorf("GET /: %d, want 200", code)
	}
	if code, _, _ := get(t, base+"/nothing"); code != http.StatusNotFound {
		t.Errorf("GET /nothing: %d, want 404", code)
	}

	if _, err := Listen(ep.Addr(), NewRegistry(), nil); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second Listen on %s: %v, want EADDRINUSE", ep.Addr(), err)
	}
	if err := ep.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := (&http.Client{Timeout: time.Second}).Get(base + Path); err == nil {
		t.Error("the endpoint still answers after Close")
	}

	// An endpoint closed without Start frees its port too.
	ep2, err := Listen("127.0.0.1:0", NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := ep2.Addr()
	if err := ep2.Close(); err != nil {
		t.Errorf("Close before Start: %v", err)
	}
	ep3, err := Listen(addr, NewRegistry(), nil)
	if err != nil {
		t.Fatalf("port of an endpoint closed before Start still held: %v", err)
	}
	ep3.Close()
}
