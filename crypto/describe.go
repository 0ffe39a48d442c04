package crypto

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"strings"
	"time"
)

// Describe renders a certificate for people (quictun cert show): subject,
// issuer, serial, validity, key type, usages (server/client/CA), hosts,
// tunnel addresses, routes, groups and the SHA-256 fingerprint that the server logs
// for a client. One "Field: value" per line, ending with a newline.
func Describe(cert *x509.Certificate) string {
	return describeAt(cert, time.Now())
}

// describeAt is Describe as seen at time now (for the validity note).
func describeAt(cert *x509.Certificate, now time.Time) string {
	var b strings.Builder
	line := func(field, format string, args ...any) {
		fmt.Fprintf(&b, "%-18s %s\n", field+":", fmt.Sprintf(format, args...))
	}
	line("Subject", "%s", cert.Subject)
	line("Issuer", "%s", cert.Issuer)
	line("Serial", "%x", cert.SerialNumber)
	line("Valid from", "%s", cert.NotBefore.UTC().Format(time.RFC3339))
	line("Valid until", "%s (%s)", cert.NotAfter.UTC().Format(time.RFC3339), validityNote(cert, now))
	line("Key", "%s", keyType(cert.PublicKey))
	line("Usages", "%s", usages(cert))

	id, idErr := IdentityOf(cert)
	var hosts []string
	hosts = append(hosts, cert.DNSNames...)
	if isServerOnly(cert) || cert.IsCA {
		for _, ip := range cert.IPAddresses {
			hosts = append(hosts, ip.String())
		}
	}
	if len(hosts) > 0 {
		line("Hosts", "%s", strings.Join(hosts, ", "))
	}
	switch {
	case idErr != nil:
		line("Error", "%v", idErr)
	case !isServerOnly(cert) && !cert.IsCA:
		if len(id.Addrs) == 0 {
			line("Tunnel addresses", "none: the server assigns one from its address pool")
		} else {
			addrs := make([]string, len(id.Addrs))
			for i, a := range id.Addrs {
				addrs[i] = a.String()
			}
			line("Tunnel addresses", "%s (prefix length from the server's network)", strings.Join(addrs, ", "))
		}
		if len(id.Routes) == 0 {
			line("Routes", "none")
		} else {
			routes := make([]string, len(id.Routes))
			for i, r := range id.Routes {
				routes[i] = r.String()
			}
			line("Routes", "%s", strings.Join(routes, ", "))
		}
		if len(id.Groups) == 0 {
			line("Groups", "none")
		} else {
			line("Groups", "%s", strings.Join(id.Groups, ", "))
		}
	}
	var others []string
	for _, u := range cert.URIs {
		_, route, rerr := parseRouteURI(u)
		_, group, gerr := parseGroupURI(u)
		if !route && !group && rerr == nil && gerr == nil {
			others = append(others, u.String())
		}
	}
	if len(others) > 0 {
		line("Other URIs", "%s", strings.Join(others, ", "))
	}
	line("SHA-256", "%s", Fingerprint(cert))
	return b.String()
}

// validityNote says whether cert is valid at now, and for how long.
func validityNote(cert *x509.Certificate, now time.Time) string {
	switch {
	case now.Before(cert.NotBefore):
		return "not yet valid"
	case now.After(cert.NotAfter):
		return "EXPIRED"
	}
	days := int(cert.NotAfter.Sub(now).Hours() / 24)
	return fmt.Sprintf("valid, %d days left", days)
}

// keyType names the algorithm and size of a public key: "ECDSA P-256".
func keyType(pub any) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d bits", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	default:
		return fmt.Sprintf("%T", pub)
	}
}

// usages lists what cert may be used for: CA, server, client.
func usages(cert *x509.Certificate) string {
	var u []string
	if cert.IsCA {
		s := "CA"
		if cert.MaxPathLenZero || (cert.MaxPathLen == 0 && cert.BasicConstraintsValid) {
			s += " (signs leaf certificates only)"
		}
		u = append(u, s)
	}
	for _, e := range cert.ExtKeyUsage {
		switch e {
		case x509.ExtKeyUsageServerAuth:
			u = append(u, "server")
		case x509.ExtKeyUsageClientAuth:
			u = append(u, "client")
		case x509.ExtKeyUsageAny:
			u = append(u, "any")
		}
	}
	if !cert.IsCA && len(cert.ExtKeyUsage) == 0 && len(cert.UnknownExtKeyUsage) == 0 {
		u = append(u, "server and client (no extended key usage)")
	}
	if len(u) == 0 {
		return "none that quictun uses"
	}
	return strings.Join(u, ", ")
}
