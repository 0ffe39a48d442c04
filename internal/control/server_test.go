package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testSeq makes the test sockets' names unique within the process.
var testSeq atomic.Int64

// testAddr returns an abstract address no other test or process uses. It
// is not under Addr's prefix, so a quictun status running meanwhile does
// not see it (TestRunning uses one that is).
func testAddr() string {
	return fmt.Sprintf("@quictun-test/%d-%d", os.Getpid(), testSeq.Add(1))
}

// syncBuffer is a bytes.Buffer a logger and a test may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// listen starts a server on addr with h, closed at the end of the test.
func listen(t *testing.T, addr string, h Handlers, log *slog.Logger) *Server {
	t.Helper()
	s, err := Listen(addr, h, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

// sampleStatus is a server's status with every member set.
func sampleStatus() Status {
	at := time.Date(2026, 5, 9, 12, 0, 0, 0, time.UTC)
	return Status{
		Role: "server", PID: 42, Device: "qt0", Mode: "tun", Time: at.Add(time.Hour),
		Certificate: Certificate{Name: "server", Fingerprint: strings.Repeat("ab", 32), NotAfter: at.AddDate(1, 0, 0)},
		Server: &ServerStatus{
			Listen: "0.0.0.0:4433",
			Sessions: []Session{{
				Name: "laptop1", Fingerprint: strings.Repeat("cd", 32), PeerNotAfter: at.AddDate(0, 6, 0),
				Addresses: []string{"10.77.0.11/24", "fd77::11/64"}, Routes: []string{"192.168.50.0/24"},
				Remote: "192.0.2.7:51820", RemoteChanges: 2, ConnectedAt: at, RTTMillis: 0.42, PacketSize: 1452,
				TxPackets: 10, TxBytes: 14140, RxPackets: 20, RxBytes: 28280, Drops: map[string]uint64{"spoofed": 3},
			}},
			Drops: map[string]uint64{"no_route": 1},
		},
	}
}

// TestRoundTrip runs every operation through a real socket: the status
// arrives as it was given, kick reaches the handler with its name, and a
// handler's error comes back with its code and text.
func TestRoundTrip(t *testing.T) {
	var kicked []string
	var mu sync.Mutex
	addr := testAddr()
	s := listen(t, addr, Handlers{
		Status: sampleStatus,
		Kick: func(name string) error {
			mu.Lock()
			defer mu.Unlock()
			if name == "nobody" {
				return NotFound(`no client "nobody" is connected`)
			}
			kicked = append(kicked, name)
			return nil
		},
		Reload: func() error { return errors.New("nothing to reload: started without a configuration file") },
	}, nil)
	if s.Addr() != addr {
		t.Errorf("Addr() = %q, want %q", s.Addr(), addr)
	}

	st, err := GetStatus(ctx(t), addr)
	if err != nil {
		t.Fatal(err)
	}
	if want := sampleStatus(); !reflect.DeepEqual(*st, want) {
		t.Errorf("status changed on the way:\ngot  %+v\nwant %+v", *st, want)
	}

	if err := Kick(ctx(t), addr, "laptop1"); err != nil {
		t.Errorf("Kick(laptop1) = %v", err)
	}
	mu.Lock()
	if !slices.Equal(kicked, []string{"laptop1"}) {
		t.Errorf("the handler was asked to kick %q, want [laptop1]", kicked)
	}
	mu.Unlock()

	var ce *Error
	if err := Kick(ctx(t), addr, "nobody"); !errors.As(err, &ce) || ce.Code != CodeNotFound || !strings.Contains(ce.Message, `"nobody"`) {
		t.Errorf("Kick(nobody) = %#v, want an Error with code %s naming nobody", err, CodeNotFound)
	}
	err = Reload(ctx(t), addr)
	if !errors.As(err, &ce) || ce.Code != CodeFailed || ce.Message != "nothing to reload: started without a configuration file" {
		t.Errorf("Reload() = %#v, want the handler's error with code %s", err, CodeFailed)
	}
}

// TestNotSupported: a process without a Kick or Reload handler (a
// client) says so rather than pretending.
func TestNotSupported(t *testing.T) {
	addr := testAddr()
	listen(t, addr, Handlers{Status: sampleStatus}, nil)
	var ce *Error
	if err := Kick(ctx(t), addr, "laptop1"); !errors.As(err, &ce) || ce.Code != CodeNotSupported {
		t.Errorf("Kick on a process without the handler = %v, want code %s", err, CodeNotSupported)
	}
	if err := Reload(ctx(t), addr); !errors.As(err, &ce) || ce.Code != CodeNotSupported {
		t.Errorf("Reload on a process without the handler = %v, want code %s", err, CodeNotSupported)
	}
}

// rawExchange writes raw bytes to addr (then shuts its write side) and
// returns the response line decoded.
func rawExchange(t *testing.T, addr string, raw []byte) Response {
	t.Helper()
	c, err := net.Dial("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// The server may answer (and close) before it read everything: write
	// from another goroutine and ignore its error.
	go func() {
		c.Write(raw)
		c.(*net.UnixConn).CloseWrite()
	}()
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		t.Fatalf("no response line: %v (%q)", err, line)
	}
	var r Response
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatalf("response %q: %v", line, err)
	}
	return r
}

// TestBadRequests sends what a broken or foreign client might: each gets
// a response with the right code and the server's version, and the
// server goes on answering.
func TestBadRequests(t *testing.T) {
	addr := testAddr()
	listen(t, addr, Handlers{Status: sampleStatus, Kick: func(string) error { return nil }}, nil)
	for _, tc := range []struct {
		name, raw, code, says string
	}{
		{"not JSON", "status please\n", CodeBadRequest, "not a JSON object"},
		{"no newline", `{"version":1,"op":"status"}`, CodeBadRequest, "one line"},
		{"no version", `{"op":"status"}` + "\n", CodeBadRequest, "version"},
		{"no op", `{"version":1}` + "\n", CodeBadRequest, "op"},
		{"newer version", `{"version":2,"op":"status"}` + "\n", CodeVersion, "version 2"},
		{"unknown op", `{"version":1,"op":"dance"}` + "\n", CodeUnknownOp, "dance"},
		{"kick without a name", `{"version":1,"op":"kick"}` + "\n", CodeBadRequest, "name"},
		{"too long", `{"version":1,"op":"status","name":"` + strings.Repeat("x", MaxRequest) + "\"}\n", CodeBadRequest, "longer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rawExchange(t, addr, []byte(tc.raw))
			if r.OK || r.Code != tc.code || r.Version != Version || !strings.Contains(r.Error, tc.says) || r.Status != nil {
				t.Errorf("response %+v, want ok false, code %s, version %d, an error saying %q", r, tc.code, Version, tc.says)
			}
		})
	}
	if _, err := GetStatus(ctx(t), addr); err != nil {
		t.Errorf("after the bad requests: %v", err)
	}
	// A member this version does not know is ignored, not refused.
	if r := rawExchange(t, addr, []byte(`{"version":1,"op":"status","verbose":true}`+"\n")); !r.OK || r.Status == nil {
		t.Errorf("a request with an unknown member: %+v, want a status", r)
	}
}

// TestClientRefusesOtherVersion: a response of another version is not
// read as this one's.
func TestClientRefusesOtherVersion(t *testing.T) {
	addr := testAddr()
	ln, err := net.Listen("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		bufio.NewReader(c).ReadBytes('\n')
		c.Write([]byte(`{"version":2,"ok":true,"status":{"role":"server"}}` + "\n"))
	}()
	var ce *Error
	if _, err := GetStatus(ctx(t), addr); !errors.As(err, &ce) || ce.Code != CodeVersion || !strings.Contains(ce.Message, "version 2") {
		t.Errorf("GetStatus from a version 2 server = %v, want an Error with code %s", err, CodeVersion)
	}
}

// TestNotRunning: nothing on the address is a NotRunningError, at once.
func TestNotRunning(t *testing.T) {
	addr := testAddr()
	start := time.Now()
	_, err := GetStatus(ctx(t), addr)
	var nr *NotRunningError
	if !errors.As(err, &nr) || nr.Addr != addr {
		t.Errorf("GetStatus(%s) with nothing listening = %v, want a NotRunningError", addr, err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("it took %v to find nothing listening", el)
	}
}

// TestInUse: a second server on one address fails with an InUseError
// (two quictun processes for one device in one namespace), and the first
// keeps answering.
func TestInUse(t *testing.T) {
	addr := testAddr()
	listen(t, addr, Handlers{Status: sampleStatus}, nil)
	s2, err := Listen(addr, Handlers{Status: sampleStatus}, nil)
	var iu *InUseError
	if !errors.As(err, &iu) {
		if s2 != nil {
			s2.Close()
		}
		t.Fatalf("second Listen(%s) = %v, want an InUseError", addr, err)
	}
	if _, err := GetStatus(ctx(t), addr); err != nil {
		t.Errorf("the first server after the second failed: %v", err)
	}
}

// TestRunning: a server's device is listed by Running while it listens,
// and not after Close; the socket leaves nothing behind to clean up.
func TestRunning(t *testing.T) {
	dev := fmt.Sprintf("test-%d-%d", os.Getpid(), testSeq.Add(1))
	s, err := Listen(Addr(dev), Handlers{Status: sampleStatus}, nil)
	if err != nil {
		t.Fatal(err)
	}
	devs, err := Running()
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	if !slices.Contains(devs, dev) {
		t.Errorf("Running() = %q while %s listens; want it listed", devs, dev)
	}
	// An open connection shows the name too, but is not a second server.
	c, err := net.Dial("unix", Addr(dev))
	if err == nil {
		devs, _ := Running()
		n := 0
		for _, d := range devs {
			if d == dev {
				n++
			}
		}
		if n != 1 {
			t.Errorf("Running() = %q lists %s %d times while a client is connected, want once", devs, dev, n)
		}
		c.Close()
	}
	s.Close()
	if devs, _ := Running(); slices.Contains(devs, dev) {
		t.Errorf("Running() = %q after Close; want %s gone", devs, dev)
	}
	if _, err := GetStatus(ctx(t), Addr(dev)); !errors.As(err, new(*NotRunningError)) {
		t.Errorf("GetStatus after Close = %v, want a NotRunningError", err)
	}
}

func TestParseProcNetUnix(t *testing.T) {
	in := `Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 31337 @quictun/qt0
0000000000000000: 00000003 00000000 00000000 0001 03 31340 @quictun/qt0
0000000000000000: 00000002 00000000 00010000 0001 01 31338 @quictun/qtap0
0000000000000000: 00000002 00000000 00010000 0001 01 31339 /run/systemd/private
0000000000000000: 00000002 00000000 00010000 0001 01 31341 @quictun-test/1-2
0000000000000000: 00000002 00000000 00000000 0002 01 31342
0000000000000000: 00000002 00000000 00010000 0001 01 31343 @quictun/
`
	if got, want := parseProcNetUnix([]byte(in)), []string{"qt0", "qtap0"}; !slices.Equal(got, want) {
		t.Errorf("parseProcNetUnix = %q, want %q", got, want)
	}
}

func TestAllowed(t *testing.T) {
	for _, tc := range []struct {
		peer, self uint32
		want       bool
	}{
		{0, 0, true},           // root asks root
		{1000, 0, false},       // a user asks a root process
		{0, 998, true},         // root asks a process that dropped to its user
		{998, 998, true},       // that user asks it
		{1000, 998, false},     // another user asks it
		{65534, 1000, false},   // nobody
		{1000, 65534, false},   // a process running as nobody is not everyone's
		{65534, 65534, true},   // …but its own
		{4294967295, 0, false}, // the overflow uid
	} {
		if got := allowed(tc.peer, tc.self); got != tc.want {
			t.Errorf("allowed(peer %d, self %d) = %v, want %v", tc.peer, tc.self, got, tc.want)
		}
	}
}

// TestCloseWithIdleClient: a client that connects and sends nothing does
// not hold Close up until its read times out.
func TestCloseWithIdleClient(t *testing.T) {
	addr := testAddr()
	s, err := Listen(addr, Handlers{Status: sampleStatus}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(50 * time.Millisecond) // let the server accept it
	start := time.Now()
	s.Close()
	if el := time.Since(start); el > time.Second {
		t.Errorf("Close took %v with an idle client connected", el)
	}
}

// TestConcurrentRequests runs more requests at once than the server
// serves at a time: all are answered.
func TestConcurrentRequests(t *testing.T) {
	addr := testAddr()
	listen(t, addr, Handlers{Status: sampleStatus}, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 4*maxConns)
	for range 4 * maxConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := GetStatus(ctx(t), addr); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
