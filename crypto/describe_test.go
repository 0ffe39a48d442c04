package crypto

import (
	"strings"
	"testing"
	"time"
)

func TestDescribe(t *testing.T) {
	tests := []struct {
		file string
		want []string
		not  []string
	}{
		{"client1", []string{
			"Subject:           CN=client1\n",
			"Issuer:            CN=quictun test CA\n",
			"Key:               ECDSA P-256\n",
			"Usages:            client\n",
			"Tunnel addresses:  10.77.0.11, fd77::11 (prefix length from the server's network)\n",
			"Routes:            192.168.50.0/24\n",
			"valid, ",
		}, []string{"Hosts:"}},
		{"nopool", []string{"Tunnel addresses:  none: the server assigns one from its address pool\n", "Routes:            none\n"}, nil},
		{"server", []string{
			"Usages:            server\n",
			"Hosts:             localhost, quictun-server, 127.0.0.1, ::1, 10.99.0.1\n",
		}, []string{"Tunnel addresses:", "Routes:"}},
		{"ca", []string{"Usages:            CA (signs leaf certificates only)\n", "Subject:           CN=quictun test CA\n"}, []string{"Tunnel addresses:"}},
		{"openssl/client-pool", []string{"Key:               RSA 2048 bits\n", "Usages:            client\n", "none: the server assigns"}, nil},
		{"openssl/server", []string{"Hosts:             localhost, 127.0.0.1\n"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			pair := testPair(t, tt.file)
			got := Describe(pair.Leaf)
			id, err := IdentityOf(pair.Leaf)
			if err != nil {
				t.Fatal(err)
			}
			want := append(tt.want, "SHA-256:           "+id.Fingerprint+"\n", "Serial:")
			for _, w := range want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in\n%s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("unexpected %q in\n%s", n, got)
				}
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		c := testPair(t, "client1").Leaf
		if got := describeAt(c, c.NotAfter.Add(time.Hour)); !strings.Contains(got, "(EXPIRED)") {
			t.Errorf("no EXPIRED in\n%s", got)
		}
	})
}

func TestDescribeGroups(t *testing.T) {
	caCert, caKey, err := NewCA(CAOptions{Name: "groups CA"})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := Issue(caCert, caKey, LeafOptions{Name: "laptop1", Groups: []string{"eng", "ops"}})
	if err != nil {
		t.Fatal(err)
	}
	got := Describe(mustParsePEMCert(t, certPEM))
	if !strings.Contains(got, "Groups:            eng, ops\n") {
		t.Errorf("no groups line in\n%s", got)
	}
	if strings.Contains(got, "Other URIs:") {
		t.Errorf("group URIs listed as other URIs in\n%s", got)
	}
	if got := Describe(testPair(t, "client1").Leaf); !strings.Contains(got, "Groups:            none\n") {
		t.Errorf("no 'Groups: none' line in\n%s", got)
	}
}
