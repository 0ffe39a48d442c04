package quictun

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/quictun/internal/hub"
)

func TestParseRule(t *testing.T) {
	good := []struct {
		in   string
		want Rule
		text string // String(), when it differs from in
	}{
		{"allow from group:eng to group:ops proto tcp port 22,443",
			Rule{Action: Allow, From: Endpoint{Kind: GroupEndpoint, Name: "eng"}, To: Endpoint{Kind: GroupEndpoint, Name: "ops"},
				Proto: ProtoTCP, Ports: []PortRange{{22, 22}, {443, 443}}}, ""},
		{"deny from name:laptop2 to 192.168.10.0/24",
			Rule{Action: Deny, From: Endpoint{Kind: NameEndpoint, Name: "laptop2"}, To: Endpoint{Kind: NetEndpoint, Net: netip.MustParsePrefix("192.168.10.0/24")}}, ""},
		{"allow from any to server proto icmp",
			Rule{Action: Allow, To: Endpoint{Kind: ServerEndpoint}, Proto: ProtoICMP}, ""},
		{"allow from group:ops to any", Rule{Action: Allow, From: Endpoint{Kind: GroupEndpoint, Name: "ops"}}, ""},
		{"  allow   from 10.77.0.5 to fd00:1::/64   proto udp port 53,5000-5100 ",
			Rule{Action: Allow, From: Endpoint{Kind: NetEndpoint, Net: netip.MustParsePrefix("10.77.0.5/32")},
				To: Endpoint{Kind: NetEndpoint, Net: netip.MustParsePrefix("fd00:1::/64")}, Proto: ProtoUDP,
				Ports: []PortRange{{53, 53}, {5000, 5100}}},
			"allow from 10.77.0.5/32 to fd00:1::/64 proto udp port 53,5000-5100"},
		{"deny from any to any port 80 proto tcp",
			Rule{Action: Deny, Proto: ProtoTCP, Ports: []PortRange{{80, 80}}}, "deny from any to any proto tcp port 80"},
		{"allow from server to any proto any", Rule{Action: Allow, From: Endpoint{Kind: ServerEndpoint}}, "allow from server to any"},
	}
	for _, tt := range good {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRule(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want.String() || got.Action != tt.want.Action || got.From != tt.want.From || got.To != tt.want.To || got.Proto != tt.want.Proto {
				t.Errorf("ParseRule = %+v, want %+v", got, tt.want)
			}
			text := tt.text
			if text == "" {
				text = tt.in
			}
			if got.String() != text {
				t.Errorf("String() = %q, want %q", got.String(), text)
			}
			again, err := ParseRule(got.String())
			if err != nil || again.String() != got.String() {
				t.Errorf("String() does not parse back: %v, %v", again, err)
			}
		})
	}
	bad := []struct{ in, want string }{
		{"", "empty: want allow|deny"},
		{"permit from any to any", `starts with "permit": want allow or deny`},
		{"allow any to any", `"any" where "from" was expected`},
		{"allow from", `ends where a source was expected`},
		{"allow from any", `ends where "to" was expected`},
		{"allow from any to", `ends where a destination was expected`},
		{"allow from anyone to any", `source: "anyone": want any, server, name:IDENTITY, group:GROUP or a network`},
		{"allow from any to 192.168.10.1/24", "did you mean 192.168.10.0/24"},
		{"allow from name: to any", `"name:" without an identity`},
		{"allow from group:a/b to any", `group name "a/b"`},
		{"allow from any to any proto gre", `proto "gre": want tcp, udp, icmp or any`},
		{"allow from any to any proto", "ends where a protocol"},
		{"allow from any to any proto tcp proto udp", `"proto" given twice`},
		{"allow from any to any port 22", "ports need proto tcp or proto udp"},
		{"allow from any to any proto icmp port 22", "ports need proto tcp or proto udp"},
		{"allow from any to any proto tcp port 0", `port "0": want a port number 1..65535`},
		{"allow from any to any proto tcp port 70000", `port "70000"`},
		{"allow from any to any proto tcp port 90-80", `port range "90-80" runs backwards: write 80-90`},
		{"allow from any to any proto tcp port 22, 443", `ports "22,": an empty item (write the list without spaces`},
		{"allow from any to any proto tcp port 22 443", `"443" where proto, port or the end was expected`},
		{"allow from any to any proto tcp port 22 port 23", `"port" given twice`},
		{"allow from ::ffff:10.0.0.0/104 to any", "IPv4-mapped"},
	}
	for _, tt := range bad {
		t.Run("bad/"+tt.in, func(t *testing.T) {
			_, err := ParseRule(tt.in)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "rule \"") {
				t.Errorf("error %q, want it to name the rule and contain %q", err, tt.want)
			}
		})
	}
}

// TestRuleKindsMatchHub: the core's endpoint kinds and protocols convert
// to the hub's by number.
func TestRuleKindsMatchHub(t *testing.T) {
	pairs := []struct{ core, hub int }{
		{int(AnyEndpoint), int(hub.AnyEndpoint)}, {int(NameEndpoint), int(hub.NameEndpoint)},
		{int(GroupEndpoint), int(hub.GroupEndpoint)}, {int(NetEndpoint), int(hub.NetEndpoint)},
		{int(ServerEndpoint), int(hub.ServerEndpoint)},
		{int(ProtoAny), int(hub.AnyProto)}, {int(ProtoTCP), int(hub.TCP)}, {int(ProtoUDP), int(hub.UDP)}, {int(ProtoICMP), int(hub.ICMP)},
	}
	for _, p := range pairs {
		if p.core != p.hub {
			t.Errorf("core kind %d is hub kind %d", p.core, p.hub)
		}
	}
}

// udp4Ports is udp4 with the given ports.
func udp4Ports(src, dst string, sport, dport uint16) []byte {
	b := udp4(src, dst, []byte("x"), false)
	binary.BigEndian.PutUint16(b[20:], sport)
	binary.BigEndian.PutUint16(b[22:], dport)
	return b
}

// TestServerRules drives a hub's TUN paths with rules: client → client,
// client → device and device → client, replies, SetRules at once.
func TestServerRules(t *testing.T) {
	s, c1 := benchHub(t, device.TUN)
	c1.id.Groups = []string{"eng"}
	c2 := addSession(s, "c2", "10.77.0.12/24")
	c2.id.Groups = []string{"ops"}
	rules := []Rule{
		mustRule(t, "allow from group:eng to group:ops proto udp port 53"),
		mustRule(t, "deny from any to 192.168.10.0/24"),
	}
	if err := s.SetRules(rules, Deny); err != nil {
		t.Fatal(err)
	}
	drained := func(ss *session) int {
		n := 0
		ss.queue.drainAll(func(pb *packetBuf) { s.bufs.put(pb); n++ })
		return n
	}
	step := func(name string, do func(), from *Counters, wantQueued *session, wantDrop bool) {
		t.Helper()
		before := from.Dropped(DropPolicy)
		do()
		dropped := from.Dropped(DropPolicy) > before
		if dropped != wantDrop {
			t.Errorf("%s: policy drop %v, want %v", name, dropped, wantDrop)
		}
		if wantQueued != nil && drained(wantQueued) != 1 {
			t.Errorf("%s: not queued for %s", name, wantQueued.name)
		}
	}
	fromDevice := func(pkt []byte) func() {
		return func() {
			pb := s.bufs.get()
			pb.n = copy(pb.data[headroom:], pkt)
			s.forwardTUN(pb)
		}
	}
	step("c2 → c1 before any flow (c2c deny)", func() { s.inboundTUN(c2, udp4Ports("10.77.0.12", "10.77.0.11", 53, 4000)) }, &c2.Counters, nil, true)
	step("c1 → c2 udp 53 allowed", func() { s.inboundTUN(c1, udp4Ports("10.77.0.11", "10.77.0.12", 4000, 53)) }, &c1.Counters, c2, false)
	step("c2 → c1 reply", func() { s.inboundTUN(c2, udp4Ports("10.77.0.12", "10.77.0.11", 53, 4000)) }, &c2.Counters, c1, false)
	step("c1 → c2 udp 54 denied", func() { s.inboundTUN(c1, udp4Ports("10.77.0.11", "10.77.0.12", 4000, 54)) }, &c1.Counters, nil, true)
	step("c1 → LAN denied", func() { s.inboundTUN(c1, udp4Ports("10.77.0.11", "192.168.10.5", 4000, 80)) }, &c1.Counters, nil, true)
	step("c1 → server allowed (no rule: allowed)", func() { s.inboundTUN(c1, udp4Ports("10.77.0.11", "10.77.0.1", 4000, 80)) }, &c1.Counters, nil, false)
	step("device → c1 allowed", fromDevice(udp4Ports("10.77.0.1", "10.77.0.11", 80, 4001)), &s.Counters, c1, false)

	// New rules apply at once: c1 may not reach c2 any more, not even on
	// the flow that was open, and the device may not reach c1.
	if err := s.SetRules([]Rule{mustRule(t, "deny from any to group:eng")}, Deny); err != nil {
		t.Fatal(err)
	}
	step("c2 → c1 reply after reload", func() { s.inboundTUN(c2, udp4Ports("10.77.0.12", "10.77.0.11", 53, 4000)) }, &c2.Counters, nil, true)
	step("device → c1 after reload", fromDevice(udp4Ports("10.77.0.1", "10.77.0.11", 80, 4002)), &s.Counters, nil, true)
	if got, c2c := s.Rules(); len(got) != 1 || c2c != Deny {
		t.Errorf("Rules() = %v, %v", got, c2c)
	}
	// Without rules everything passes again.
	if err := s.SetRules(nil, 0); err != nil {
		t.Fatal(err)
	}
	step("c2 → c1 with no rules", func() { s.inboundTUN(c2, udp4Ports("10.77.0.12", "10.77.0.11", 53, 4000)) }, &c2.Counters, c1, false)
}

func mustRule(t testing.TB, s string) Rule {
	t.Helper()
	r, err := ParseRule(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRulesConfigErrors(t *testing.T) {
	s, _ := benchHub(t, device.TUN)
	tests := []struct {
		name  string
		rules []Rule
		c2c   RuleAction
		want  string
	}{
		{"no action", []Rule{{}}, 0, "Rules: rule 1"},
		{"bad group", []Rule{{Action: Allow, From: Endpoint{Kind: GroupEndpoint, Name: "a b"}}}, 0, "group name"},
		{"ports without proto", []Rule{{Action: Allow, Ports: []PortRange{{1, 2}}}}, 0, "ports need"},
		{"bad c2c", nil, 7, "ClientToClient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.SetRules(tt.rules, tt.c2c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("SetRules: %v, want an error containing %q", err, tt.want)
			}
		})
	}
	tap, _ := benchHub(t, device.TAP)
	if err := tap.SetRules([]Rule{mustRule(t, "deny from any to any")}, 0); err == nil || !strings.Contains(err.Error(), "TUN mode") {
		t.Errorf("SetRules in TAP mode: %v, want a TUN-mode error", err)
	}
}
