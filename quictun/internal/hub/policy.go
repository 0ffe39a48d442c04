package hub

import (
	"math/bits"
	"net/netip"
	"slices"
	"time"
)

// EndpointKind is what a rule's source or destination names.
type EndpointKind uint8

// The endpoint kinds.
const (
	AnyEndpoint    EndpointKind = iota // every port and address
	NameEndpoint                       // the client with this identity
	GroupEndpoint                      // every client in this group
	NetEndpoint                        // every address in a network, whoever sends or owns it
	ServerEndpoint                     // the server's own tunnel addresses (on the device side)
)

// Endpoint is a rule's source or destination.
type Endpoint struct {
	Kind EndpointKind
	Name string       // NameEndpoint and GroupEndpoint
	Net  netip.Prefix // NetEndpoint (masked)
}

// Proto is the protocol a rule matches.
type Proto uint8

// The protocols.
const (
	AnyProto  Proto = iota
	TCP             // IP protocol 6
	UDP             // IP protocol 17
	ICMP            // ICMP (1) and ICMPv6 (58)
	numProtos       // bound, for checks
)

// PortRange is an inclusive range of destination ports.
type PortRange struct{ Lo, Hi uint16 }

// Rule is one access rule: Allow (or deny) packets From → To of Proto to
// one of Ports (nil: any port; only with TCP or UDP).
type Rule struct {
	Allow    bool
	From, To Endpoint
	Proto    Proto
	Ports    []PortRange
}

// Policy is a compiled, immutable rule set: the rules in order (first
// match wins) and the verdicts for packets no rule matches. It decides for
// TUN packets between ports, and between a port and the server's side (the
// device), named here by a nil *PeerRules.
//
// Matching is split so that a packet costs little: at compile time each
// rule's source and destination become a bit per rule that says whether
// the rule can apply to the device side, and for a client Peer works out
// the same bits from its identity and groups (once per client and policy:
// the caller keeps the result). A packet then scans only the rules whose
// bits are set for both its source and its destination, checking
// addresses, protocol and ports there. A flow once allowed is recorded in
// a Conntrack, and later packets of it in either direction pass without a
// scan.
type Policy struct {
	rules  []compiledRule
	server []netip.Addr // ServerEndpoint: the server's own addresses
	c2c    bool         // the verdict for client ↔ client traffic no rule matched
	// empty: no rules and c2c allowed, so everything passes and nothing is
	// tracked (the data path then costs as much as without a policy).
	empty bool
	gen   uint32
	// devFrom and devTo have a bit set for each rule whose source
	// (destination) can be the device side.
	devFrom, devTo []uint64
}

// compiledRule is a Rule with what Peer has not decided left to check per
// packet.
type compiledRule struct {
	allow              bool
	from, to           Endpoint
	proto              Proto
	ports              []PortRange
	fromAddr, toAddr   bool     // the endpoint needs an address check (NetEndpoint, ServerEndpoint)
	fromServ, toServer bool     // ... against the server's addresses
	fromNet, toNet     netMatch // ... or against this network
}

// netMatch is a network as masked integers (the layout of addrBits), so
// that a packet's addresses are converted once and each rule costs two
// ANDs and compares.
type netMatch struct {
	hi, lo, mhi, mlo uint64
	v6               bool
}

// netMatchOf returns the matcher of a network.
func netMatchOf(p netip.Prefix) netMatch {
	if !p.IsValid() {
		return netMatch{}
	}
	p = p.Masked()
	hi, lo := addrBits(p.Addr())
	m := netMatch{hi: hi, lo: lo, v6: p.Addr().Is6()}
	full := maskedKey(^uint64(0), ^uint64(0), p.Bits(), p.Addr().BitLen())
	m.mhi, m.mlo = full.hi, full.lo
	return m
}

// has reports whether the address hi:lo of family v6 is in the network.
func (m *netMatch) has(hi, lo uint64, v6 bool) bool {
	return m.v6 == v6 && hi&m.mhi == m.hi && lo&m.mlo == m.lo
}

// NewPolicy compiles rules (copied) for a server whose own tunnel
// addresses are server; clientToClient is the verdict for client ↔ client
// traffic that no rule matches (traffic between a client and the server's
// side that no rule matches is allowed). gen tells policies apart in the
// Conntrack: give each new policy a new one, and flows recorded under an
// older one are checked against the new rules at their next packet.
func NewPolicy(rules []Rule, server []netip.Addr, clientToClient bool, gen uint32) *Policy {
	p := &Policy{server: slices.Clone(server), c2c: clientToClient, gen: gen, empty: len(rules) == 0 && clientToClient}
	nw := (len(rules) + 63) / 64
	p.devFrom, p.devTo = make([]uint64, nw), make([]uint64, nw)
	for i, r := range rules {
		cr := compiledRule{allow: r.Allow, from: r.From, to: r.To, proto: r.Proto, ports: slices.Clone(r.Ports)}
		cr.fromAddr = r.From.Kind == NetEndpoint || r.From.Kind == ServerEndpoint
		cr.toAddr = r.To.Kind == NetEndpoint || r.To.Kind == ServerEndpoint
		cr.fromServ, cr.toServer = r.From.Kind == ServerEndpoint, r.To.Kind == ServerEndpoint
		cr.fromNet, cr.toNet = netMatchOf(r.From.Net), netMatchOf(r.To.Net)
		p.rules = append(p.rules, cr)
		if deviceSide(r.From) {
			p.devFrom[i/64] |= 1 << (i % 64)
		}
		if deviceSide(r.To) {
			p.devTo[i/64] |= 1 << (i % 64)
		}
	}
	return p
}

// deviceSide reports whether e can stand for the server's side.
func deviceSide(e Endpoint) bool {
	return e.Kind == AnyEndpoint || e.Kind == NetEndpoint || e.Kind == ServerEndpoint
}

// clientSide reports whether e can stand for a client with this identity
// and groups.
func clientSide(e Endpoint, name string, groups []string) bool {
	switch e.Kind {
	case AnyEndpoint, NetEndpoint:
		return true
	case NameEndpoint:
		return e.Name == name
	case GroupEndpoint:
		return slices.Contains(groups, e.Name)
	}
	return false
}

// Len returns the number of rules.
func (p *Policy) Len() int { return len(p.rules) }

// PeerRules is what a Policy says about one client: which rules can apply
// with it as the source, and which with it as the destination. Make one
// per client and policy with Peer and keep it (it allocates).
type PeerRules struct {
	policy   *Policy
	from, to []uint64
}

// Peer works out the rules that can apply to the client with this
// identity and groups.
func (p *Policy) Peer(name string, groups []string) *PeerRules {
	pr := &PeerRules{policy: p, from: make([]uint64, len(p.devFrom)), to: make([]uint64, len(p.devTo))}
	for i, r := range p.rules {
		if clientSide(r.from, name, groups) {
			pr.from[i/64] |= 1 << (i % 64)
		}
		if clientSide(r.to, name, groups) {
			pr.to[i/64] |= 1 << (i % 64)
		}
	}
	return pr
}

// For reports whether pr was made by p (nil pr: no).
func (pr *PeerRules) For(p *Policy) bool { return pr != nil && pr.policy == p }

// Flow is what the policy reads from a packet: its addresses, IP protocol
// and, when HasPorts, its ports (TCP, UDP) or ICMP echo identifier (as
// packet.Ports puts it: a request's as its source port, a reply's as its
// destination port).
type Flow struct {
	Src, Dst     netip.Addr
	Proto        uint8
	SPort, DPort uint16
	HasPorts     bool
}

// reversed returns the flow of the other direction.
func (f Flow) reversed() Flow {
	return Flow{Src: f.Dst, Dst: f.Src, Proto: f.Proto, SPort: f.DPort, DPort: f.SPort, HasPorts: f.HasPorts}
}

// Allow decides whether a packet of flow f from src to dst passes (nil
// stands for the server's side; src and dst must be p's, from Peer). A
// packet of a flow ct holds passes; otherwise the first rule that matches
// decides, and without one the default does. A flow allowed is recorded in
// ct (flows without ports, such as ICMP errors and non-first fragments,
// are not: they are decided by the rules alone each time). A recorded flow
// from an older policy is checked once against p in the direction of its
// first packet, and kept or dropped. now is the time as ct.Now gives it.
// It does not allocate.
func (p *Policy) Allow(ct *Conntrack, src, dst *PeerRules, f *Flow, now time.Duration) bool {
	if p.empty {
		return true
	}
	if !f.HasPorts {
		return p.match(src, dst, f)
	}
	at := max(int64(now), 1)
	ref, hit, forward, stale := ct.lookup(f, at, p.gen)
	if hit && !stale {
		return true
	}
	var ok bool
	if !hit || forward {
		ok = p.match(src, dst, f)
	} else {
		r := f.reversed()
		ok = p.match(dst, src, &r)
	}
	switch {
	case hit:
		ct.revalidated(ref, f, p.gen, ok)
	case ok:
		ct.add(f, at, p.gen)
	}
	return ok
}

// match returns the verdict of the rules for f from src to dst.
func (p *Policy) match(src, dst *PeerRules, f *Flow) bool {
	from, to := p.devFrom, p.devTo
	if src != nil {
		from = src.from
	}
	if dst != nil {
		to = dst.to
	}
	var a packetAddrs
	a.sHi, a.sLo = addrBits(f.Src)
	a.dHi, a.dLo = addrBits(f.Dst)
	a.v6 = f.Src.Is6()
	for w := range from {
		m := from[w] & to[w]
		for m != 0 {
			i := w*64 + bits.TrailingZeros64(m)
			m &= m - 1
			if r := &p.rules[i]; p.matches(r, f, &a) {
				return r.allow
			}
		}
	}
	if src != nil && dst != nil {
		return p.c2c
	}
	return true
}

// packetAddrs are a flow's addresses as integers (addrBits).
type packetAddrs struct {
	sHi, sLo, dHi, dLo uint64
	v6                 bool
}

// matches checks what Peer left open: protocol, addresses, ports.
func (p *Policy) matches(r *compiledRule, f *Flow, a *packetAddrs) bool {
	switch r.proto {
	case TCP:
		if f.Proto != 6 {
			return false
		}
	case UDP:
		if f.Proto != 17 {
			return false
		}
	case ICMP:
		if f.Proto != 1 && f.Proto != 58 {
			return false
		}
	}
	if r.fromAddr && !p.endpointHas(&r.fromNet, r.fromServ, f.Src, a.sHi, a.sLo, a.v6) {
		return false
	}
	if r.toAddr && !p.endpointHas(&r.toNet, r.toServer, f.Dst, a.dHi, a.dLo, a.v6) {
		return false
	}
	if r.ports == nil {
		return true
	}
	if !f.HasPorts {
		return false
	}
	for _, pr := range r.ports {
		if pr.Lo <= f.DPort && f.DPort <= pr.Hi {
			return true
		}
	}
	return false
}

// endpointHas reports whether address a (hi:lo) is in a network or
// server endpoint.
func (p *Policy) endpointHas(n *netMatch, server bool, a netip.Addr, hi, lo uint64, v6 bool) bool {
	if server {
		return slices.Contains(p.server, a)
	}
	return n.has(hi, lo, v6)
}
