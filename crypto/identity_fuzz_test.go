package crypto

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseRouteURI parses arbitrary URIs as a certificate's URI SAN. A
// quictun:route URI (the scheme and kind in any case) is a route or an
// error, never ignored; any other URI is ignored, never an error. A route
// is a masked prefix without a zone, not IPv4-mapped, and written back by
// routeURI it parses as the same route; and the URI as a certificate holds
// it (its String, parsed again) gives the same answer.
func FuzzParseRouteURI(f *testing.F) {
	for _, s := range []string{"quictun:route:192.168.50.0/24", "quictun:route:fd00:1::/64", "QUICTUN:Route:0.0.0.0/0",
		"quictun:route:192.168.50.1/24", "quictun:route:::ffff:10.0.0.0/104", "quictun:route:fe80::%eth0/64",
		"quictun:route:banana", "quictun:route:", "quictun:group:admins", "spiffe://example.org/x", "quictun://route/1.2.3.0/24",
		"quictun:route:10.0.0.0%2f8", "quictun:route:010.0.0.0/8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.Parse(s)
		if err != nil {
			return // x509 refuses a certificate with such a URI
		}
		p, ok, perr := parseRouteURI(u)
		isRoute := strings.HasPrefix(strings.ToLower(u.String()), routeURIPrefix)
		switch {
		case perr != nil:
			if ok || p.IsValid() || !isRoute {
				t.Fatalf("%q: error %v with %v, %v (a route URI: %v)", u, perr, p, ok, isRoute)
			}
		case !ok:
			if isRoute || p.IsValid() {
				t.Fatalf("%q: a route URI ignored (%v)", u, p)
			}
		default:
			if !isRoute || !p.IsValid() || p.Masked() != p || p.Addr().Zone() != "" || p.Addr().Is4In6() {
				t.Fatalf("%q: route %v", u, p)
			}
			back, err := url.Parse(routeURI(p).String())
			if err != nil {
				t.Fatalf("routeURI(%v) = %q does not parse: %v", p, routeURI(p), err)
			}
			if q, ok, err := parseRouteURI(back); q != p || !ok || err != nil {
				t.Fatalf("route %v written as %q parses as %v, %v, %v", p, back, q, ok, err)
			}
		}
		// A certificate holds u.String(); parsed again it must say the same.
		if again, err := url.Parse(u.String()); err == nil {
			q, ok2, err2 := parseRouteURI(again)
			if q != p || ok2 != ok || (err2 == nil) != (perr == nil) {
				t.Fatalf("%q and its String %q parse differently: %v %v %v / %v %v %v", s, u, p, ok, perr, q, ok2, err2)
			}
		}
	})
}

// fuzzIPs turns b into IP SANs: records of a selector byte (even: 4
// bytes, odd: 16) and the address bytes.
func fuzzIPs(b []byte) []net.IP {
	var ips []net.IP
	for len(b) > 0 {
		n := 4
		if b[0]&1 == 1 {
			n = 16
		}
		if len(b) < 1+n {
			break
		}
		ips = append(ips, net.IP(slices.Clone(b[1:1+n])))
		b = b[1+n:]
	}
	return ips
}

// FuzzIdentityOf signs certificates with arbitrary IP SANs, URI SANs (one
// per line of uris) and extended key usages, and reads their Identity. It
// must fail exactly when a tunnel address (an IP SAN of a certificate that
// may act as a client) is unspecified or multicast, or a quictun:route URI
// is malformed; otherwise the Identity holds the name, the unmapped IP SANs
// in order (none for a server-only certificate), the routes of the route
// URIs in order and the DER's SHA-256. And whatever leafTemplate, which
// quictun cert issue uses, accepts as a client's addresses and routes, the
// certificate it makes gives back as its Identity.
func FuzzIdentityOf(f *testing.F) {
	f.Add("laptop1", []byte{0, 10, 77, 0, 11, 1, 0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11},
		"quictun:route:192.168.50.0/24\nspiffe://example.org/laptop\nquictun:route:fd00:1::/64", uint8(2))
	f.Add("srv", []byte{0, 192, 0, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3}, "", uint8(1))
	f.Add("", []byte{0, 0, 0, 0, 0}, "quictun:route:10.0.0.1/8", uint8(0))
	f.Add("x", []byte{1, 0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, "QUICTUN:ROUTE:10.0.0.0/8\nquictun:group:admins", uint8(3))
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	ekus := [][]x509.ExtKeyUsage{nil, {x509.ExtKeyUsageServerAuth}, {x509.ExtKeyUsageClientAuth},
		{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, {x509.ExtKeyUsageAny, x509.ExtKeyUsageServerAuth}}
	f.Fuzz(func(t *testing.T, name string, ipBytes []byte, uris string, eku uint8) {
		if !utf8.ValidString(name) {
			return // x509 writes a CommonName as UTF-8
		}
		tmpl := &x509.Certificate{ExtKeyUsage: ekus[int(eku)%len(ekus)], IPAddresses: fuzzIPs(ipBytes)}
		tmpl.Subject.CommonName = name
		for _, line := range strings.Split(uris, "\n") {
			if u, err := url.Parse(line); err == nil && line != "" {
				tmpl.URIs = append(tmpl.URIs, u)
			}
		}
		der, err := x509.CreateCertificate(rand.Reader, withValidity(tmpl), tmpl, key.Public(), key)
		if err != nil {
			return // not a certificate x509 makes (a URI it refuses)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return // nor one it reads back
		}
		id, err := IdentityOf(cert)

		serverOnly := tmpl.ExtKeyUsage != nil && !slices.Contains(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth) &&
			!slices.Contains(tmpl.ExtKeyUsage, x509.ExtKeyUsageAny)
		var wantAddrs []netip.Addr
		bad := false
		if !serverOnly {
			for _, ip := range cert.IPAddresses {
				a, _ := netip.AddrFromSlice(ip)
				a = a.Unmap()
				bad = bad || !a.IsValid() || a.IsUnspecified() || a.IsMulticast()
				wantAddrs = append(wantAddrs, a)
			}
		}
		var wantRoutes []netip.Prefix
		for _, u := range cert.URIs {
			p, ok, err := parseRouteURI(u)
			bad = bad || err != nil
			if ok {
				wantRoutes = append(wantRoutes, p)
			}
		}
		if bad != (err != nil) {
			t.Fatalf("IdentityOf: %v; a bad SAN: %v (IPs %v, URIs %v, server only %v)", err, bad, cert.IPAddresses, cert.URIs, serverOnly)
		}
		if err != nil {
			return
		}
		sum := sha256.Sum256(der)
		if id.Name != cert.Subject.CommonName || !slices.Equal(id.Addrs, wantAddrs) || !slices.Equal(id.Routes, wantRoutes) || id.Fingerprint != hex.EncodeToString(sum[:]) {
			t.Fatalf("Identity %+v; want name %q, addresses %v, routes %v", id, cert.Subject.CommonName, wantAddrs, wantRoutes)
		}

		// What quictun cert issue would write for the same client.
		opts := LeafOptions{Name: name, Addrs: id.Addrs, Routes: id.Routes}
		lt, err := leafTemplate(opts)
		if err != nil {
			return // a name it refuses
		}
		der, err = x509.CreateCertificate(rand.Reader, lt, lt, key.Public(), key)
		if err != nil {
			t.Fatalf("cannot sign leafTemplate(%+v): %v", opts, err)
		}
		if cert, err = x509.ParseCertificate(der); err != nil {
			t.Fatalf("cannot read back leafTemplate(%+v): %v", opts, err)
		}
		id2, err := IdentityOf(cert)
		if err != nil || id2.Name != name || !slices.Equal(id2.Addrs, id.Addrs) || !slices.Equal(id2.Routes, id.Routes) {
			t.Fatalf("issued for %+v, read back %+v, %v", opts, id2, err)
		}
	})
}

// withValidity fills in what CreateCertificate needs besides the SANs.
func withValidity(tmpl *x509.Certificate) *x509.Certificate {
	t, err := leafTemplate(LeafOptions{Name: "validity"})
	if err != nil {
		panic(err)
	}
	tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = t.SerialNumber, t.NotBefore, t.NotAfter
	return tmpl
}
