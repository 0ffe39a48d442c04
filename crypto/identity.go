package crypto

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// routeURIPrefix starts every URI subjectAltName that names a network routed
// behind a client: "quictun:route:192.168.50.0/24".
const routeURIPrefix = "quictun:route:"

// groupURIPrefix starts every URI subjectAltName that names a group the
// client belongs to: "quictun:group:eng". Access rules name groups.
const groupURIPrefix = "quictun:group:"

// Identity is what a peer's certificate says about it.
type Identity struct {
	// Name is the subject CommonName; the identity key of a client. It is
	// "" when the certificate has no CommonName.
	Name string
	// Addrs are the tunnel addresses (IP SANs), for a client certificate
	// only: nil for a server-only certificate (ExtKeyUsage ServerAuth
	// without ClientAuth), whose IP SANs are the server's hosts. nil too
	// when the certificate names none; the server then assigns one from its
	// pool. The prefix length is not in the certificate: the server takes
	// it from its own network that contains the address.
	Addrs []netip.Addr
	// Routes are the networks routed behind the client, from URI SANs
	// "quictun:route:<prefix>"; nil when there are none.
	Routes []netip.Prefix
	// Groups are the groups the peer belongs to, from URI SANs
	// "quictun:group:<name>", in certificate order without repeats; nil
	// when there are none. Access rules (group:<name>) match them.
	Groups []string
	// Fingerprint is the lower-case hex SHA-256 of the leaf's DER.
	Fingerprint string
}

// IdentityOf reads the Identity of a peer from its leaf certificate. It
// returns an error for a malformed quictun:route URI (not a prefix, or a
// prefix with host bits set), for a quictun:group URI whose name is not a
// valid group name (CheckGroupName), and for a tunnel address that is unspecified,
// multicast or has a zone. URI SANs of other schemes are ignored.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	if cert == nil {
		return Identity{}, fmt.Errorf("identity of certificate: no certificate")
	}
	id := Identity{
		Name:        cert.Subject.CommonName,
		Fingerprint: Fingerprint(cert),
	}
	if !isServerOnly(cert) {
		for _, ip := range cert.IPAddresses {
			a, ok := netip.AddrFromSlice(ip)
			if !ok {
				return Identity{}, fmt.Errorf("identity of %q: IP SAN %v is not an IPv4 or IPv6 address", id.Name, ip)
			}
			a = a.Unmap()
			if err := checkTunnelAddr(a); err != nil {
				return Identity{}, fmt.Errorf("identity of %q: IP SAN: %w", id.Name, err)
			}
			id.Addrs = append(id.Addrs, a)
		}
	}
	for _, u := range cert.URIs {
		p, ok, err := parseRouteURI(u)
		if err != nil {
			return Identity{}, fmt.Errorf("identity of %q: %w", id.Name, err)
		}
		if ok {
			id.Routes = append(id.Routes, p)
			continue
		}
		g, ok, err := parseGroupURI(u)
		if err != nil {
			return Identity{}, fmt.Errorf("identity of %q: %w", id.Name, err)
		}
		if ok && !slices.Contains(id.Groups, g) {
			id.Groups = append(id.Groups, g)
		}
	}
	return id, nil
}

// Fingerprint returns the lower-case hex SHA-256 of cert's DER.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// isServerOnly reports whether cert may serve but not act as a client: it
// names ServerAuth and neither ClientAuth nor "any".
func isServerOnly(cert *x509.Certificate) bool {
	server := false
	for _, u := range cert.ExtKeyUsage {
		switch u {
		case x509.ExtKeyUsageServerAuth:
			server = true
		case x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageAny:
			return false
		}
	}
	return server
}

// checkTunnelAddr rejects addresses that cannot be a tunnel address.
func checkTunnelAddr(a netip.Addr) error {
	switch {
	case !a.IsValid():
		return fmt.Errorf("invalid address")
	case a.Zone() != "":
		return fmt.Errorf("address %v has a zone", a)
	case a.IsUnspecified():
		return fmt.Errorf("address %v is unspecified", a)
	case a.IsMulticast():
		return fmt.Errorf("address %v is multicast", a)
	}
	return nil
}

// routeURI returns the URI SAN that names route p.
func routeURI(p netip.Prefix) *url.URL {
	// An opaque URL: String gives back "quictun:route:<prefix>" unchanged.
	return &url.URL{Scheme: "quictun", Opaque: "route:" + p.String()}
}

// parseRouteURI reads a "quictun:route:<prefix>" URI. ok is false for a URI
// that is not a quictun route (it is ignored); err is set for a quictun
// route whose prefix is malformed.
func parseRouteURI(u *url.URL) (p netip.Prefix, ok bool, err error) {
	s := u.String()
	if !strings.HasPrefix(strings.ToLower(s), routeURIPrefix) {
		return netip.Prefix{}, false, nil
	}
	p, err = parseRoute(s[len(routeURIPrefix):])
	if err != nil {
		return netip.Prefix{}, false, fmt.Errorf("URI SAN %q: %w", s, err)
	}
	return p, true, nil
}

// parseRoute parses a route prefix such as "192.168.50.0/24": a network
// address (no host bits) with its length.
func parseRoute(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a network prefix like 192.168.50.0/24 or fd00:1::/64", s)
	}
	if p.Addr().Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("route %q has a zone", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("route %q has host bits set: did you mean %v?", s, m)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("route %q is an IPv4-mapped IPv6 prefix: write it as IPv4", s)
	}
	return p, nil
}

// MaxGroupName is the longest group name, in bytes.
const MaxGroupName = 64

// CheckGroupName reports whether g can name a group: 1 to MaxGroupName
// characters of A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter or
// digit. Group names are case-sensitive. The small charset keeps a group
// URI the same in every tool that prints it and keeps rules unambiguous.
func CheckGroupName(g string) error {
	if g == "" {
		return errors.New("a group name cannot be empty")
	}
	if len(g) > MaxGroupName {
		return fmt.Errorf("group name %q is longer than %d characters", g, MaxGroupName)
	}
	for i := 0; i < len(g); i++ {
		c := g[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return fmt.Errorf("group name %q: use only letters, digits, '.', '_' and '-' (not first)", g)
		}
	}
	return nil
}

// groupURI returns the URI SAN that names group g.
func groupURI(g string) *url.URL {
	return &url.URL{Scheme: "quictun", Opaque: "group:" + g}
}

// parseGroupURI reads a "quictun:group:<name>" URI. ok is false for a URI
// that is not a quictun group (it is ignored); err is set for a group URI
// whose name is not valid.
func parseGroupURI(u *url.URL) (g string, ok bool, err error) {
	s := u.String()
	if !strings.HasPrefix(strings.ToLower(s), groupURIPrefix) {
		return "", false, nil
	}
	g = s[len(groupURIPrefix):]
	if err := CheckGroupName(g); err != nil {
		return "", false, fmt.Errorf("URI SAN %q: %w", s, err)
	}
	return g, true, nil
}
