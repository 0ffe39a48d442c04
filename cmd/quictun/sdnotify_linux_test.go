package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quictun/quictun/quictun"
)

// notifyListener is a stand-in for systemd's notify socket: a Unix
// datagram socket whose address the test puts in NOTIFY_SOCKET.
type notifyListener struct {
	t    *testing.T
	conn *net.UnixConn
}

// listenNotify listens on addr (a path, or "@name" for an abstract socket)
// and sets NOTIFY_SOCKET to it for the test.
func listenNotify(t *testing.T, addr string) *notifyListener {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", addr)
	return &notifyListener{t: t, conn: conn}
}

// next returns the next message, or "" if none comes within timeout.
func (l *notifyListener) next(timeout time.Duration) string {
	l.t.Helper()
	buf := make([]byte, 4096)
	l.conn.SetReadDeadline(time.Now().Add(timeout))
	n, err := l.conn.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ""
	}
	if err != nil {
		l.t.Fatal(err)
	}
	return string(buf[:n])
}

func (l *notifyListener) want(want string) {
	l.t.Helper()
	if got := l.next(2 * time.Second); got != want {
		l.t.Fatalf("notify message %q, want %q", got, want)
	}
}

func TestSDNotify(t *testing.T) {
	t.Run("no NOTIFY_SOCKET", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", "")
		os.Unsetenv("NOTIFY_SOCKET")
		if sent, err := sdNotify("READY=1"); sent || err != nil {
			t.Fatalf("sdNotify without NOTIFY_SOCKET: sent %v, err %v; want nothing done", sent, err)
		}
	})
	t.Run("path", func(t *testing.T) {
		l := listenNotify(t, filepath.Join(t.TempDir(), "notify"))
		if sent, err := sdNotify("READY=1\nSTATUS=up"); !sent || err != nil {
			t.Fatalf("sent %v, err %v", sent, err)
		}
		l.want("READY=1\nSTATUS=up")
	})
	t.Run("abstract", func(t *testing.T) {
		l := listenNotify(t, fmt.Sprintf("@quictun-test-notify-%d-%d", os.Getpid(), time.Now().UnixNano()))
		if sent, err := sdNotify("STOPPING=1"); !sent || err != nil {
			t.Fatalf("sent %v, err %v", sent, err)
		}
		l.want("STOPPING=1")
	})
	t.Run("no listener", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "gone")
		t.Setenv("NOTIFY_SOCKET", path)
		_, err := sdNotify("READY=1")
		if err == nil || !strings.Contains(err.Error(), "NOTIFY_SOCKET="+path) {
			t.Fatalf("err %v, want one naming NOTIFY_SOCKET=%s", err, path)
		}
	})
	t.Run("vsock", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", "vsock:2:1234")
		if _, err := sdNotify("READY=1"); err == nil {
			t.Fatal("no error for a vsock NOTIFY_SOCKET, which quictun does not speak")
		}
	})
}

// TestSystemdNotifier checks the messages each call sends.
func TestSystemdNotifier(t *testing.T) {
	l := listenNotify(t, filepath.Join(t.TempDir(), "notify"))
	n := &systemdNotifier{}

	n.Ready("listening on [::]:4433, device qt0")
	l.want("READY=1\nSTATUS=listening on [::]:4433, device qt0")

	t.Run("reload", func(t *testing.T) {
		var during string
		err := n.Reload(func() error {
			during = l.next(2 * time.Second) // sent before the reload runs
			return nil
		})()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(during, "RELOADING=1\nMONOTONIC_USEC=") || !strings.HasSuffix(during, "\nSTATUS=reloading") {
			t.Errorf("before the reload: %q, want RELOADING=1 with MONOTONIC_USEC", during)
		}
		l.want("READY=1\nSTATUS=listening on [::]:4433, device qt0")

		err = n.Reload(func() error { return errors.New("bad file") })()
		if err == nil || err.Error() != "bad file" {
			t.Fatalf("Reload returned %v, want the reload's error", err)
		}
		l.next(2 * time.Second)
		l.want("READY=1\nSTATUS=reload failed: bad file; listening on [::]:4433, device qt0")
	})

	t.Run("client", func(t *testing.T) {
		changed := n.ClientState("vpn.example.com:4433")
		changed(quictun.StateConnecting, nil)
		l.want("STATUS=connecting to vpn.example.com:4433")
		changed(quictun.StateUp, nil)
		l.want("READY=1\nSTATUS=tunnel up to vpn.example.com:4433")
		changed(quictun.StateReconnecting, errors.New("idle timeout"))
		l.want("STATUS=reconnecting to vpn.example.com:4433: idle timeout")
		changed(quictun.StateStopped, nil)
		if got := l.next(200 * time.Millisecond); got != "" {
			t.Errorf("stopped sent %q; STOPPING=1 comes from the run context", got)
		}
	})

	t.Run("stopping", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		n.StoppingWhenDone(ctx)
		if got := l.next(200 * time.Millisecond); got != "" {
			t.Fatalf("sent %q before the context ended", got)
		}
		cancel()
		l.want("STOPPING=1\nSTATUS=stopping")
	})
}
