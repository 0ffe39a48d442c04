package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestControlRoundTrip(t *testing.T) {
	msgs := []*ControlMsg{
		{Type: MsgHello, Version: 1, Mode: "tap", MTU: 1300, Instance: "00aa"},
		{Type: MsgConfig, Version: 1, Mode: "tun", MTU: 1414, Name: "laptop1",
			Addresses: []netip.Prefix{netip.MustParsePrefix("10.77.0.11/24"), netip.MustParsePrefix("fd77::11/64")},
			Gateways:  []netip.Addr{netip.MustParseAddr("10.77.0.1")},
			Routes:    []netip.Prefix{netip.MustParsePrefix("192.168.10.0/24")}, KeepaliveMS: 10000, IdleMS: 30000},
		{Type: MsgReady},
		{Type: MsgError, Code: "mode_mismatch", Message: "the server runs in tun mode"},
		{Type: MsgGoAway, Message: "bye"},
		{Type: MsgRoutes, Routes: []netip.Prefix{netip.MustParsePrefix("192.168.10.0/24"), netip.MustParsePrefix("fd00:10::/64")}},
		{Type: MsgRoutes}, // no routes left
	}
	var buf bytes.Buffer
	for _, m := range msgs {
		if err := WriteControl(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range msgs {
		got, err := ReadControl(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if gb, wb := mustJSON(t, got), mustJSON(t, want); gb != wb {
			t.Errorf("round trip:\n got %s\nwant %s", gb, wb)
		}
	}
	if _, err := ReadControl(&buf); err == nil {
		t.Error("read past the last message succeeded")
	}
}

func mustJSON(t *testing.T, m *ControlMsg) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteControl(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.String()[2:]
}

// frame returns body with its 16-bit length prefix.
func frame(body string) []byte {
	b := make([]byte, 2, 2+len(body))
	binary.BigEndian.PutUint16(b, uint16(len(body)))
	return append(b, body...)
}

func TestControlDecode(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		wantErr string
		check   func(*ControlMsg) bool
	}{
		{"unknown members are ignored", frame(`{"type":"hello","version":2,"future":{"x":1},"mtu":1400}`), "",
			func(m *ControlMsg) bool { return m.Type == MsgHello && m.Version == 2 && m.MTU == 1400 }},
		{"no type", frame(`{"version":1}`), "no type", nil},
		{"not JSON", frame(`hello`), "decode", nil},
		{"truncated body", frame(`{"type":"ready"}`)[:8], "body", nil},
		{"empty stream", nil, "read control message", nil},
		{"bad address", frame(`{"type":"config","addresses":["10.77.0.300/24"]}`), "decode", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ReadControl(bytes.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(m) {
				t.Errorf("decoded %+v", m)
			}
		})
	}
}

func TestControlTooLarge(t *testing.T) {
	m := &ControlMsg{Type: MsgError, Message: strings.Repeat("x", maxControlMessage)}
	if err := WriteControl(io.Discard, m); err == nil {
		t.Fatal("a message over 65535 bytes was written")
	}
}

// sameMsg reports whether a and b say the same: equal, with an empty list
// the same as none (omitempty writes neither).
func sameMsg(a, b *ControlMsg) bool {
	norm := func(m ControlMsg) ControlMsg {
		if len(m.Addresses) == 0 {
			m.Addresses = nil
		}
		if len(m.Gateways) == 0 {
			m.Gateways = nil
		}
		if len(m.Routes) == 0 {
			m.Routes = nil
		}
		return m
	}
	return reflect.DeepEqual(norm(*a), norm(*b))
}

// FuzzReadControl reads one control message from arbitrary bytes. It
// checks that ReadControl never panics; that a message it accepts has a
// type and used exactly its length prefix's bytes; and that a message it
// accepts is written and read back as the same message, with the same
// encoding the second time, unless its encoding no longer fits 65535 bytes.
func FuzzReadControl(f *testing.F) {
	for _, body := range []string{
		`{"type":"hello","version":1,"mode":"tap","mtu":1300,"instance":"00aa"}`,
		`{"type":"config","version":1,"mode":"tun","mtu":1414,"addresses":["10.77.0.11/24","fd77::11/64"],` +
			`"gateways":["10.77.0.1"],"routes":["192.168.10.0/24"],"keepalive_ms":10000,"idle_timeout_ms":30000,"name":"laptop1"}`,
		`{"type":"ready"}`,
		`{"type":"error","code":"mode_mismatch","message":"the server runs in tun mode"}`,
		`{"type":"goaway","message":"bye","future":{"x":[1,2]}}`,
		`{"type":"config","addresses":[],"gateways":[""],"routes":null}`,
		`{"TYPE":"x","Mtu":-1,"message":"\u00e9\ud800<&>"}`,
		`{"version":1}`,
		`[1]`,
	} {
		f.Add(frame(body))
	}
	f.Add(frame(`{"type":"ready"}`)[:8])
	f.Add([]byte{0xff, 0xff, '{'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		m, err := ReadControl(r)
		if err != nil {
			return
		}
		if m.Type == "" {
			t.Fatal("accepted a message without a type")
		}
		if used, want := len(data)-r.Len(), 2+int(binary.BigEndian.Uint16(data)); used != want {
			t.Fatalf("read %d bytes of a %d-byte message", used, want)
		}
		var b1 bytes.Buffer
		if err := WriteControl(&b1, m); err != nil {
			if body, _ := json.Marshal(m); len(body) <= maxControlMessage {
				t.Fatalf("cannot write back a message it read: %v", err)
			}
			return
		}
		enc := bytes.Clone(b1.Bytes())
		m2, err := ReadControl(&b1)
		if err != nil {
			t.Fatalf("cannot read back %q: %v", enc, err)
		}
		if !sameMsg(m, m2) {
			t.Fatalf("round trip changed the message:\n got %+v\nwant %+v", m2, m)
		}
		var b2 bytes.Buffer
		if err := WriteControl(&b2, m2); err != nil || !bytes.Equal(b2.Bytes(), enc) {
			t.Fatalf("second encoding differs (%v):\n%q\n%q", err, b2.Bytes(), enc)
		}
	})
}

// fuzzAddrs turns b into addresses: records of a selector byte (even:
// IPv4, odd: IPv6), the address bytes, and a prefix length byte (taken
// modulo the address's bit length + 1).
func fuzzAddrs(b []byte) (prefixes []netip.Prefix, addrs []netip.Addr) {
	for len(b) > 0 {
		n := 4
		if b[0]&1 == 1 {
			n = 16
		}
		if len(b) < 1+n+1 {
			break
		}
		a, _ := netip.AddrFromSlice(b[1 : 1+n])
		bits := int(b[1+n]) % (a.BitLen() + 1)
		prefixes, addrs = append(prefixes, netip.PrefixFrom(a, bits)), append(addrs, a)
		b = b[1+n+1:]
	}
	return prefixes, addrs
}

// FuzzControlRoundTrip builds a valid control message from its inputs
// (any non-empty type, valid UTF-8, any numbers and addresses), writes and
// reads it, and checks that the message read is the message written.
func FuzzControlRoundTrip(f *testing.F) {
	f.Add("config", 1, "tun", 1414, "00aa", "laptop1", "", "", int64(10000), int64(30000),
		[]byte{0, 10, 77, 0, 11, 24, 1, 0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11, 64})
	f.Add("error", 0, "", 0, "", "", "mode_mismatch", "the server runs in <tun> mode \u2028 é", int64(0), int64(-1), []byte{})
	f.Add("x", -7, "tap", -1, "\x7f", "ünï", "c", "\x00", int64(1)<<62, int64(-1)<<63,
		[]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4, 200})
	f.Fuzz(func(t *testing.T, typ string, version int, mode string, mtu int, instance, name, code, msg string,
		keepalive, idle int64, addrBytes []byte) {
		for _, s := range []string{typ, mode, instance, name, code, msg} {
			if !utf8.ValidString(s) {
				return // JSON carries text: invalid UTF-8 is not a message we send
			}
		}
		if typ == "" {
			return // ReadControl refuses a message without a type
		}
		prefixes, addrs := fuzzAddrs(addrBytes)
		routes := make([]netip.Prefix, len(prefixes))
		for i, p := range prefixes {
			routes[i] = p.Masked()
		}
		if len(prefixes) == 0 {
			routes = nil
		}
		m := &ControlMsg{Type: typ, Version: version, Instance: instance, Mode: mode, MTU: mtu,
			Addresses: prefixes, Gateways: addrs, Routes: routes, KeepaliveMS: keepalive, IdleMS: idle,
			Name: name, Code: code, Message: msg}
		var b bytes.Buffer
		if err := WriteControl(&b, m); err != nil {
			if body, _ := json.Marshal(m); len(body) <= maxControlMessage {
				t.Fatalf("cannot write %+v: %v", m, err)
			}
			return
		}
		got, err := ReadControl(&b)
		if err != nil {
			t.Fatalf("cannot read back %+v: %v", m, err)
		}
		if !sameMsg(got, m) {
			t.Fatalf("round trip changed the message:\n got %+v\nwant %+v", got, m)
		}
		if b.Len() != 0 {
			t.Fatalf("%d bytes left after the message", b.Len())
		}
	})
}
