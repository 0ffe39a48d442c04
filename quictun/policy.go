package quictun

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quictun/quictun/packet"
	"github.com/quictun/quictun/quictun/internal/hub"
)

// The server's access rules (TUN mode). The compiled rule set is
// immutable and swapped whole through an atomic pointer, so SetRules
// applies at the next packet and the data path never takes a lock for it.
// Each session keeps what the current set says about its identity and
// groups (hub.PeerRules), made again at its first packet after a change;
// the connection-tracking table outlives the sets, and a flow recorded
// under an older set is checked against the new one at its next packet.

// policyState is one rule set in force, with the table it records into.
type policyState struct {
	pol   *hub.Policy
	ct    *hub.Conntrack // nil while no set needed one
	open  bool           // no rules and client ↔ client allowed: nothing to check
	rules []Rule         // as given, for Rules
	c2c   RuleAction
}

// serverPolicy is the Server's part that holds the rules.
type serverPolicy struct {
	cur atomic.Pointer[policyState]
	// now is the conntrack's clock (hub.Conntrack.Now, as a
	// time.Duration), advanced every policyClockTick by the server's
	// policyClock: a packet reads it instead of the clock, which costs
	// more than the rest of a tracked packet's check on some machines.
	now atomic.Int64
	mu  sync.Mutex // serializes setRules
	gen uint32     // guarded by mu
}

// policyClockTick is the resolution of the conntrack's clock: far below
// its shortest timeout (30 s).
const policyClockTick = 250 * time.Millisecond

// policyClock advances the conntrack's clock until the server stops.
func (s *Server) policyClock() {
	defer s.wg.Done()
	t := time.NewTicker(policyClockTick)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.policy.tick()
		}
	}
}

// tick sets the clock to the conntrack's time now.
func (sp *serverPolicy) tick() {
	if st := sp.cur.Load(); st.ct != nil {
		sp.now.Store(int64(st.ct.Now()))
	}
}

// setRules compiles and installs a rule set (checked) for a server whose
// own addresses are in networks.
func (sp *serverPolicy) setRules(rules []Rule, c2c RuleAction, networks []netip.Prefix) {
	if c2c == 0 {
		c2c = Allow
	}
	var server []netip.Addr
	for _, n := range networks {
		server = append(server, n.Addr())
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.gen++
	st := &policyState{pol: hub.NewPolicy(hubRules(rules), server, c2c == Allow, sp.gen),
		rules: slices.Clone(rules), c2c: c2c, open: len(rules) == 0 && c2c == Allow}
	if old := sp.cur.Load(); old != nil {
		st.ct = old.ct
	}
	if st.ct == nil && (len(rules) > 0 || c2c == Deny) {
		st.ct = hub.NewConntrack(0) // allocated once, when first needed
	}
	sp.cur.Store(st)
	sp.tick()
}

// SetRules replaces the access rules (ServerConfig.Rules) and the verdict
// for client ↔ client traffic no rule matches (ServerConfig.ClientToClient;
// 0: Allow). The next packet of every client is decided by the new rules,
// including packets of connections already open: a flow that the old rules
// allowed is checked once against the new ones (in the direction of its
// first packet) and kept or cut. An invalid rule makes SetRules return a
// *ConfigError for "Rules" and change nothing. It may be called at any
// time, also before Serve.
func (s *Server) SetRules(rules []Rule, clientToClient RuleAction) error {
	if err := checkModeRules(s.mode, rules, clientToClient); err != nil {
		return err
	}
	s.policy.setRules(rules, clientToClient, s.cfg.Networks)
	st := s.policy.cur.Load()
	s.log.Info("access rules changed", "rules", len(rules), "client_to_client", st.c2c.String())
	return nil
}

// Rules returns the access rules in force and the client ↔ client
// default (a copy).
func (s *Server) Rules() ([]Rule, RuleAction) {
	st := s.policy.cur.Load()
	return slices.Clone(st.rules), st.c2c
}

// peerRules returns what policy st says about session ss, made once per
// session and rule set.
func (ss *session) peerRules(p *hub.Policy) *hub.PeerRules {
	pr := ss.rules.Load()
	if !pr.For(p) {
		pr = p.Peer(ss.id.Name, ss.id.Groups)
		ss.rules.Store(pr)
	}
	return pr
}

// allowed reports whether the access rules let the TUN packet pkt (parsed
// as info) go from src to dst (nil: the server's side).
func (s *Server) allowed(src, dst *session, pkt []byte, info packet.IPInfo) bool {
	st := s.policy.cur.Load()
	if st.open {
		return true
	}
	f := hub.Flow{Src: info.Src, Dst: info.Dst, Proto: info.Proto}
	f.SPort, f.DPort, f.HasPorts = packet.Ports(pkt, info)
	var sp, dp *hub.PeerRules
	if src != nil {
		sp = src.peerRules(st.pol)
	}
	if dst != nil {
		dp = dst.peerRules(st.pol)
	}
	return st.pol.Allow(st.ct, sp, dp, &f, time.Duration(s.policy.now.Load()))
}
