package quictun

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	qcrypto "github.com/quictun/quictun/crypto"
	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/quictun/internal/hub"
)

// RuleAction is what a rule does with the packets it matches.
type RuleAction uint8

// The actions. The zero value is no action: in ServerConfig.ClientToClient
// it means Allow.
const (
	Allow RuleAction = iota + 1
	Deny
)

// String returns "allow" or "deny".
func (a RuleAction) String() string {
	switch a {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	}
	return "unset"
}

// ParseRuleAction reads "allow" or "deny".
func ParseRuleAction(s string) (RuleAction, error) {
	switch s {
	case "allow":
		return Allow, nil
	case "deny":
		return Deny, nil
	}
	return 0, fmt.Errorf("%q: want allow or deny", s)
}

// EndpointKind is what a rule's source or destination names.
type EndpointKind uint8

// The endpoint kinds.
const (
	// AnyEndpoint: every client and the server's side.
	AnyEndpoint EndpointKind = iota
	// NameEndpoint: the client with this identity (certificate CN).
	NameEndpoint
	// GroupEndpoint: every client whose certificate names this group.
	GroupEndpoint
	// NetEndpoint: every address in a network, whether a client or the
	// server's side sends from it or owns it.
	NetEndpoint
	// ServerEndpoint: the server's own tunnel addresses
	// (ServerConfig.Networks).
	ServerEndpoint
)

// Endpoint is a rule's source or destination.
type Endpoint struct {
	Kind EndpointKind
	// Name is the identity (NameEndpoint) or group (GroupEndpoint).
	Name string
	// Net is the network of a NetEndpoint (no host bits).
	Net netip.Prefix
}

// String returns the endpoint as ParseRule reads it.
func (e Endpoint) String() string {
	switch e.Kind {
	case NameEndpoint:
		return "name:" + e.Name
	case GroupEndpoint:
		return "group:" + e.Name
	case NetEndpoint:
		return e.Net.String()
	case ServerEndpoint:
		return "server"
	}
	return "any"
}

// RuleProto is the protocol a rule matches.
type RuleProto uint8

// The protocols. ProtoICMP is ICMP and ICMPv6.
const (
	ProtoAny RuleProto = iota
	ProtoTCP
	ProtoUDP
	ProtoICMP
)

var protoNames = [...]string{ProtoAny: "any", ProtoTCP: "tcp", ProtoUDP: "udp", ProtoICMP: "icmp"}

// String returns "any", "tcp", "udp" or "icmp".
func (p RuleProto) String() string {
	if int(p) < len(protoNames) {
		return protoNames[p]
	}
	return "unknown"
}

// PortRange is an inclusive range of destination ports; a single port has
// Lo == Hi.
type PortRange struct{ Lo, Hi uint16 }

// String returns "22" or "8000-8999".
func (r PortRange) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(int(r.Lo))
	}
	return fmt.Sprintf("%d-%d", r.Lo, r.Hi)
}

// Rule is one access rule of the hub (TUN mode): packets From → To of
// Proto, to one of Ports, are allowed or denied. Rules are checked in
// order and the first that matches decides; docs/OPERATIONS.md ("Access
// rules") has the whole model. ParseRule reads the text form.
type Rule struct {
	Action   RuleAction
	From, To Endpoint
	// Proto is the protocol; ProtoAny matches every one.
	Proto RuleProto
	// Ports are destination ports, for ProtoTCP and ProtoUDP only. Nil:
	// any port.
	Ports []PortRange
}

// String returns the rule in the form ParseRule reads, e.g.
// "allow from group:eng to group:ops proto tcp port 22,443".
func (r Rule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s from %s to %s", r.Action, r.From, r.To)
	if r.Proto != ProtoAny {
		b.WriteString(" proto " + r.Proto.String())
	}
	for i, p := range r.Ports {
		if i == 0 {
			b.WriteString(" port ")
		} else {
			b.WriteString(",")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// ParseRule reads one rule:
//
//	allow|deny from SOURCE to DESTINATION [proto tcp|udp|icmp|any] [port PORTS]
//
// where SOURCE and DESTINATION are any, server, name:IDENTITY,
// group:GROUP or a network (192.168.10.0/24, fd00:1::/64, or an address for
// one host), and PORTS is a comma-separated list of ports and ranges
// (22,443,8000-8999) of the destination, with proto tcp or udp. Words are
// separated by spaces. The error says which word is wrong and what was
// expected.
func ParseRule(s string) (Rule, error) {
	r, err := parseRule(strings.Fields(s))
	if err != nil {
		return Rule{}, fmt.Errorf("rule %q: %w", s, err)
	}
	return r, nil
}

func parseRule(w []string) (Rule, error) {
	var r Rule
	next := func(what string) (string, error) {
		if len(w) == 0 {
			return "", fmt.Errorf("ends where %s was expected", what)
		}
		s := w[0]
		w = w[1:]
		return s, nil
	}
	keyword := func(kw string) error {
		s, err := next(fmt.Sprintf("%q", kw))
		if err != nil {
			return err
		}
		if s != kw {
			return fmt.Errorf("%q where %q was expected", s, kw)
		}
		return nil
	}
	s, err := next("allow or deny")
	if err != nil {
		return r, errors.New("empty: want allow|deny from SOURCE to DESTINATION [proto P] [port PORTS]")
	}
	if r.Action, err = ParseRuleAction(s); err != nil {
		return r, fmt.Errorf("starts with %q: want allow or deny", s)
	}
	if err := keyword("from"); err != nil {
		return r, err
	}
	if s, err = next("a source"); err != nil {
		return r, err
	}
	if r.From, err = parseEndpoint(s); err != nil {
		return r, fmt.Errorf("source: %w", err)
	}
	if err := keyword("to"); err != nil {
		return r, err
	}
	if s, err = next("a destination"); err != nil {
		return r, err
	}
	if r.To, err = parseEndpoint(s); err != nil {
		return r, fmt.Errorf("destination: %w", err)
	}
	seenProto := false
	for len(w) > 0 {
		kw, _ := next("")
		switch kw {
		case "proto":
			if seenProto {
				return r, errors.New(`"proto" given twice`)
			}
			seenProto = true
			if s, err = next("a protocol (tcp, udp, icmp or any)"); err != nil {
				return r, err
			}
			if r.Proto, err = parseProto(s); err != nil {
				return r, err
			}
		case "port":
			if r.Ports != nil {
				return r, errors.New(`"port" given twice: list the ports with commas, e.g. port 22,443`)
			}
			if s, err = next("ports (e.g. 22,443,8000-8999)"); err != nil {
				return r, err
			}
			if r.Ports, err = parsePorts(s); err != nil {
				return r, err
			}
		default:
			return r, fmt.Errorf("%q where proto, port or the end was expected", kw)
		}
	}
	if r.Ports != nil && r.Proto != ProtoTCP && r.Proto != ProtoUDP {
		return r, errors.New("ports need proto tcp or proto udp (before or after port)")
	}
	return r, nil
}

// parseEndpoint reads a source or destination.
func parseEndpoint(s string) (Endpoint, error) {
	switch {
	case s == "any":
		return Endpoint{Kind: AnyEndpoint}, nil
	case s == "server":
		return Endpoint{Kind: ServerEndpoint}, nil
	case strings.HasPrefix(s, "name:"):
		n := s[len("name:"):]
		if n == "" {
			return Endpoint{}, errors.New(`"name:" without an identity: write name:laptop1`)
		}
		return Endpoint{Kind: NameEndpoint, Name: n}, nil
	case strings.HasPrefix(s, "group:"):
		g := s[len("group:"):]
		if err := qcrypto.CheckGroupName(g); err != nil {
			return Endpoint{}, err
		}
		return Endpoint{Kind: GroupEndpoint, Name: g}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		a = a.Unmap()
		return Endpoint{Kind: NetEndpoint, Net: netip.PrefixFrom(a, a.BitLen())}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Zone() != "" {
		return Endpoint{}, fmt.Errorf("%q: want any, server, name:IDENTITY, group:GROUP or a network like 192.168.10.0/24", s)
	}
	if m := p.Masked(); m != p {
		return Endpoint{}, fmt.Errorf("%q has host bits set: did you mean %v?", s, m)
	}
	if p.Addr().Is4In6() {
		return Endpoint{}, fmt.Errorf("%q is an IPv4-mapped IPv6 network: write it as IPv4", s)
	}
	return Endpoint{Kind: NetEndpoint, Net: p}, nil
}

// parseProto reads a protocol name.
func parseProto(s string) (RuleProto, error) {
	for i, n := range protoNames {
		if s == n {
			return RuleProto(i), nil
		}
	}
	return 0, fmt.Errorf("proto %q: want tcp, udp, icmp or any", s)
}

// parsePorts reads "22,443,8000-8999".
func parsePorts(s string) ([]PortRange, error) {
	var out []PortRange
	for _, part := range strings.Split(s, ",") {
		if part == "" {
			return nil, fmt.Errorf("ports %q: an empty item (write the list without spaces, e.g. 22,443)", s)
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := parsePort(lo)
		if err != nil {
			return nil, fmt.Errorf("port %q: %w", part, err)
		}
		b := a
		if isRange {
			if b, err = parsePort(hi); err != nil {
				return nil, fmt.Errorf("port %q: %w", part, err)
			}
			if b < a {
				return nil, fmt.Errorf("port range %q runs backwards: write %d-%d", part, b, a)
			}
		}
		out = append(out, PortRange{a, b})
	}
	return out, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, errors.New("want a port number 1..65535 or a range like 8000-8999")
	}
	return uint16(n), nil
}

// check reports what makes a rule built by hand (not by ParseRule)
// unusable.
func (r Rule) check() error {
	if r.Action != Allow && r.Action != Deny {
		return errors.New("no action: want Allow or Deny")
	}
	for _, e := range []Endpoint{r.From, r.To} {
		switch e.Kind {
		case NameEndpoint:
			if e.Name == "" {
				return errors.New("name endpoint without a name")
			}
		case GroupEndpoint:
			if err := qcrypto.CheckGroupName(e.Name); err != nil {
				return err
			}
		case NetEndpoint:
			if !e.Net.IsValid() || e.Net.Masked() != e.Net {
				return fmt.Errorf("network %v is not a network prefix without host bits", e.Net)
			}
		case AnyEndpoint, ServerEndpoint:
		default:
			return fmt.Errorf("unknown endpoint kind %d", e.Kind)
		}
	}
	if int(r.Proto) >= len(protoNames) {
		return fmt.Errorf("unknown protocol %d", r.Proto)
	}
	if r.Ports != nil && r.Proto != ProtoTCP && r.Proto != ProtoUDP {
		return errors.New("ports need ProtoTCP or ProtoUDP")
	}
	for _, p := range r.Ports {
		if p.Lo == 0 || p.Hi < p.Lo {
			return fmt.Errorf("port range %v is empty or starts at 0", p)
		}
	}
	return nil
}

// checkRules checks ServerConfig.Rules and ClientToClient, as Validate
// and SetRules do.
func checkRules(rules []Rule, c2c RuleAction) error {
	for i, r := range rules {
		if err := r.check(); err != nil {
			return configErr("Rules", "rule %d (%s): %v", i+1, r, err)
		}
	}
	if c2c != 0 && c2c != Allow && c2c != Deny {
		return configErr("ClientToClient", "%d: want Allow or Deny (0: Allow)", c2c)
	}
	return nil
}

// checkModeRules is checkRules for a server in mode: the rules are for
// TUN mode, where the hub routes IP packets.
func checkModeRules(mode device.Kind, rules []Rule, c2c RuleAction) error {
	if mode == device.TAP && len(rules) > 0 {
		return configErr("Rules", "access rules apply in TUN mode; a TAP hub switches Ethernet frames")
	}
	if mode == device.TAP && c2c == Deny {
		return configErr("ClientToClient", "applies in TUN mode; a TAP hub switches Ethernet frames")
	}
	return checkRules(rules, c2c)
}

// hubRules converts rules (checked) to the hub's form.
func hubRules(rules []Rule) []hub.Rule {
	out := make([]hub.Rule, len(rules))
	for i, r := range rules {
		out[i] = hub.Rule{Allow: r.Action == Allow, From: hubEndpoint(r.From), To: hubEndpoint(r.To),
			Proto: hub.Proto(r.Proto), Ports: make([]hub.PortRange, len(r.Ports))}
		for j, p := range r.Ports {
			out[i].Ports[j] = hub.PortRange{Lo: p.Lo, Hi: p.Hi}
		}
		if r.Ports == nil {
			out[i].Ports = nil
		}
	}
	return out
}

func hubEndpoint(e Endpoint) hub.Endpoint {
	return hub.Endpoint{Kind: hub.EndpointKind(e.Kind), Name: e.Name, Net: e.Net}
}
