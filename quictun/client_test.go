package quictun

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/quictun/quictun/device"
)

func TestSleepDetector(t *testing.T) {
	wall := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mono time.Duration
	d := &sleepDetector{wall: func() time.Time { return wall }, mono: func() time.Duration { return mono }}
	d.lastWall, d.lastMono = wall, mono
	tests := []struct {
		name       string
		wall, mono time.Duration
		want       time.Duration
	}{
		{"awake", time.Second, time.Second, 0},
		{"slept ten minutes", 10*time.Minute + time.Second, time.Second, 10 * time.Minute},
		{"awake again", 2 * time.Second, 2 * time.Second, 0},
		{"clock set back", -time.Hour, time.Second, -time.Hour - time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wall, mono = wall.Add(tt.wall), mono+tt.mono
			if got := d.slept(); got != tt.want {
				t.Errorf("slept() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	for n := 0; n < 20; n++ {
		d := backoff(n)
		base := min(100*time.Millisecond<<min(n, 4), time.Second)
		if d < base*3/4 || d > base*5/4 {
			t.Errorf("backoff(%d) = %v, want %v ±25%%", n, d, base)
		}
	}
	if backoff(10) > 1250*time.Millisecond {
		t.Errorf("backoff is not capped near 1 s: %v", backoff(10))
	}
}

// TestClientMaxRetries: with --max-retries the client gives up on a dead
// server with an error that says so; without, it keeps trying until stopped.
func TestClientMaxRetries(t *testing.T) {
	dead := "127.0.0.1:9" // discard port: nothing answers QUIC there
	cl, err := NewClient(ClientConfig{Server: dead, TLS: clientTLS(t, "client1", "ca"), MaxRetries: 2,
		SetupDevice: func(Assignment) (device.Device, error) { t.Fatal("no server, no device"); return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	fds := openFDs(t)
	err = cl.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "gave up after 3 failed attempts") {
		t.Fatalf("Run = %v, want it to give up after 3 attempts", err)
	}
	t.Logf("gave up after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if now := openFDs(t); now > fds {
		t.Errorf("%d file descriptors open after 3 failed dials, %d before: a socket per dial leaks", now, fds)
	}

	cl, err = NewClient(ClientConfig{Server: dead, TLS: clientTLS(t, "client1", "ca"),
		SetupDevice: func(Assignment) (device.Device, error) { return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if err := cl.Run(ctx); err != nil {
		t.Fatalf("Run without MaxRetries = %v, want nil when stopped", err)
	}
}

// openFDs counts the process's open file descriptors (Linux; elsewhere the
// test is skipped).
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd here")
	}
	return len(ents)
}
