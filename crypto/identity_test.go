package crypto

import (
	"crypto/ecdsa"
	"crypto/elliptic"
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
)

func TestIdentityOfTestdata(t *testing.T) {
	tests := []struct {
		file   string
		name   string
		addrs  []string
		routes []string
	}{
		{"client1", "client1", []string{"10.77.0.11", "fd77::11"}, []string{"192.168.50.0/24"}},
		{"client2", "client2", []string{"10.77.0.12", "fd77::12"}, nil},
		{"nopool", "nopool", nil, nil},
		{"other-client", "other-client", []string{"10.77.0.13"}, nil},
		// A server-only certificate's IP SANs are hosts, not tunnel addresses.
		{"server", "server", nil, nil},
		{"openssl/client21", "openssl-client21", []string{"10.77.0.21"}, nil},
		{"openssl/client-pool", "openssl-pool", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			pair := testPair(t, tt.file)
			id, err := IdentityOf(pair.Leaf)
			if err != nil {
				t.Fatal(err)
			}
			if id.Name != tt.name {
				t.Errorf("Name %q, want %q", id.Name, tt.name)
			}
			if got := stringsOf(id.Addrs); !slices.Equal(got, tt.addrs) {
				t.Errorf("Addrs %q, want %q", got, tt.addrs)
			}
			if got := stringsOf(id.Routes); !slices.Equal(got, tt.routes) {
				t.Errorf("Routes %q, want %q", got, tt.routes)
			}
			sum := sha256.Sum256(pair.Certificate[0])
			if id.Fingerprint != hex.EncodeToString(sum[:]) || len(id.Fingerprint) != 64 {
				t.Errorf("Fingerprint %q, want the hex SHA-256 of the leaf DER", id.Fingerprint)
			}
		})
	}
}

// stringsOf formats each element of s with String; nil for an empty s.
func stringsOf[T interface{ String() string }](s []T) []string {
	var out []string
	for _, v := range s {
		out = append(out, v.String())
	}
	return out
}

func TestIdentityOfSANs(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	uri := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	tests := []struct {
		name    string
		eku     []x509.ExtKeyUsage
		ips     []net.IP
		uris    []string
		addrs   []string
		routes  []string
		groups  []string
		wantErr string
	}{
		{name: "groups in order, repeats once",
			uris:   []string{"quictun:group:eng", "quictun:route:192.168.50.0/24", "quictun:group:ops", "quictun:group:eng"},
			routes: []string{"192.168.50.0/24"}, groups: []string{"eng", "ops"}},
		{name: "group with dots, dashes and underscores", uris: []string{"quictun:group:site-1.db_admin"}, groups: []string{"site-1.db_admin"}},
		{name: "group empty", uris: []string{"quictun:group:"}, wantErr: "cannot be empty"},
		{name: "group with a bad character", uris: []string{"quictun:group:eng/ops"}, wantErr: "use only letters, digits"},
		{name: "group starting with a dash", uris: []string{"quictun:group:-eng"}, wantErr: "use only letters, digits"},
		{name: "v6 route and other URIs ignored",
			uris:   []string{"quictun:route:fd00:1::/64", "spiffe://example.org/laptop", "https://example.com/x"},
			routes: []string{"fd00:1::/64"}},
		{name: "no EKU: IP SANs are tunnel addresses",
			ips: []net.IP{net.ParseIP("10.77.0.5")}, addrs: []string{"10.77.0.5"}},
		{name: "server and client EKU: IP SANs are tunnel addresses",
			eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			ips: []net.IP{net.ParseIP("10.77.0.6")}, addrs: []string{"10.77.0.6"}},
		{name: "4-in-6 address unmapped",
			ips: []net.IP{net.ParseIP("::ffff:10.77.0.7").To16()}, addrs: []string{"10.77.0.7"}},
		{name: "route not a prefix", uris: []string{"quictun:route:192.168.50.0"}, wantErr: "not a network prefix"},
		{name: "route with host bits", uris: []string{"quictun:route:192.168.50.1/24"}, wantErr: "did you mean 192.168.50.0/24"},
		{name: "route garbage", uris: []string{"quictun:route:banana"}, wantErr: "not a network prefix"},
		{name: "unspecified tunnel address", ips: []net.IP{net.IPv4zero}, wantErr: "unspecified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := &x509.Certificate{ExtKeyUsage: tt.eku, IPAddresses: tt.ips}
			for _, u := range tt.uris {
				tmpl.URIs = append(tmpl.URIs, uri(u))
			}
			c := mustParsePEMCert(t, selfSigned(t, key, tmpl))
			id, err := IdentityOf(c)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := stringsOf(id.Addrs); !slices.Equal(got, tt.addrs) {
				t.Errorf("Addrs %q, want %q", got, tt.addrs)
			}
			if got := stringsOf(id.Routes); !slices.Equal(got, tt.routes) {
				t.Errorf("Routes %q, want %q", got, tt.routes)
			}
			if !slices.Equal(id.Groups, tt.groups) {
				t.Errorf("Groups %q, want %q", id.Groups, tt.groups)
			}
		})
	}
	if _, err := IdentityOf(nil); err == nil {
		t.Error("IdentityOf(nil): no error")
	}
}

func TestRouteURIRoundTrip(t *testing.T) {
	for _, s := range []string{"192.168.50.0/24", "0.0.0.0/0", "fd00:1::/64", "::/0", "10.1.2.3/32"} {
		t.Run(s, func(t *testing.T) {
			p := netip.MustParsePrefix(s)
			u := routeURI(p)
			if got, want := u.String(), "quictun:route:"+s; got != want {
				t.Errorf("URI %q, want %q", got, want)
			}
			parsed, err := url.Parse(u.String())
			if err != nil {
				t.Fatal(err)
			}
			got, ok, err := parseRouteURI(parsed)
			if err != nil || !ok || got != p {
				t.Errorf("parse back: %v %v %v, want %v", got, ok, err, p)
			}
		})
	}
}

func TestIssueGroups(t *testing.T) {
	caCert, caKey, err := NewCA(CAOptions{Name: "groups CA"})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := Issue(caCert, caKey, LeafOptions{Name: "laptop1", Groups: []string{"eng", "ops"}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := IdentityOf(mustParsePEMCert(t, certPEM))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(id.Groups, []string{"eng", "ops"}) {
		t.Errorf("Groups %q, want [eng ops]", id.Groups)
	}
	for _, tt := range []struct {
		name string
		opts LeafOptions
		want string
	}{
		{"bad group", LeafOptions{Name: "x", Groups: []string{"a b"}}, `group name "a b"`},
		{"long group", LeafOptions{Name: "x", Groups: []string{strings.Repeat("g", MaxGroupName+1)}}, "longer than 64"},
		{"server with group", LeafOptions{Name: "s", Server: true, Hosts: []string{"vpn"}, Groups: []string{"eng"}}, "groups are for client certificates"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := Issue(caCert, caKey, tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Issue: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
