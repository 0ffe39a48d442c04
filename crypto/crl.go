package crypto

import (
	"bytes"
	stdcrypto "crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"slices"
	"strings"
	"time"
)

// DefaultCRLDays is how long a CRL made by CreateCRL is current (the time
// from its thisUpdate to its nextUpdate) when CRLOptions.Days is 0.
const DefaultCRLDays = 30

// pemCRL is the PEM block type of a CRL, as OpenSSL and easy-rsa write it.
const pemCRL = "X509 CRL"

// RevocationReason is the reason a certificate was revoked: the CRLReason
// codes of RFC 5280 section 5.3.1.
type RevocationReason int

// The reasons of RFC 5280 (7 is not used).
const (
	ReasonUnspecified          RevocationReason = 0
	ReasonKeyCompromise        RevocationReason = 1
	ReasonCACompromise         RevocationReason = 2
	ReasonAffiliationChanged   RevocationReason = 3
	ReasonSuperseded           RevocationReason = 4
	ReasonCessationOfOperation RevocationReason = 5
	ReasonCertificateHold      RevocationReason = 6
	ReasonRemoveFromCRL        RevocationReason = 8
	ReasonPrivilegeWithdrawn   RevocationReason = 9
	ReasonAACompromise         RevocationReason = 10
)

// reasonNames are the reasons' names as RFC 5280 spells them (and as
// `openssl ca -crl_reason` takes them, case aside).
var reasonNames = map[RevocationReason]string{
	ReasonUnspecified:          "unspecified",
	ReasonKeyCompromise:        "keyCompromise",
	ReasonCACompromise:         "cACompromise",
	ReasonAffiliationChanged:   "affiliationChanged",
	ReasonSuperseded:           "superseded",
	ReasonCessationOfOperation: "cessationOfOperation",
	ReasonCertificateHold:      "certificateHold",
	ReasonRemoveFromCRL:        "removeFromCRL",
	ReasonPrivilegeWithdrawn:   "privilegeWithdrawn",
	ReasonAACompromise:         "aACompromise",
}

// String returns the reason's RFC 5280 name, e.g. "keyCompromise".
func (r RevocationReason) String() string {
	if n, ok := reasonNames[r]; ok {
		return n
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// RevocationReasonNames returns the names ParseRevocationReason accepts,
// in the order of their codes.
func RevocationReasonNames() []string {
	var codes []RevocationReason
	for r := range reasonNames {
		if r != ReasonRemoveFromCRL {
			codes = append(codes, r)
		}
	}
	slices.Sort(codes)
	names := make([]string, len(codes))
	for i, r := range codes {
		names[i] = r.String()
	}
	return names
}

// ParseRevocationReason parses an RFC 5280 reason name, in any case
// ("keyCompromise", "keycompromise"). removeFromCRL is refused: it has a
// meaning only in delta CRLs, which quictun does not make.
func ParseRevocationReason(s string) (RevocationReason, error) {
	for r, n := range reasonNames {
		if strings.EqualFold(s, n) {
			if r == ReasonRemoveFromCRL {
				return 0, errors.New("removeFromCRL is only for delta CRLs: to take a certificate off the list, make the CRL anew without it")
			}
			return r, nil
		}
	}
	return 0, fmt.Errorf("unknown revocation reason %q: want one of %s", s, strings.Join(RevocationReasonNames(), ", "))
}

// ParseCRL parses a CRL in PEM ("-----BEGIN X509 CRL-----", text before
// the block allowed) or DER form. file names the source in errors. It
// does not check the signature: see CheckCRLSignature.
func ParseCRL(data []byte, file string) (*x509.RevocationList, error) {
	der := data
	if bytes.Contains(data, []byte("-----BEGIN")) {
		der = nil
		var others []string
		for rest := data; der == nil; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			if b.Type == pemCRL {
				der = b.Bytes
			} else {
				others = append(others, b.Type)
			}
		}
		switch {
		case der == nil && len(others) > 0:
			return nil, fmt.Errorf("%s holds %s, not a CRL (-----BEGIN X509 CRL-----): give the file that `quictun cert crl`, `openssl ca -gencrl` or `easyrsa gen-crl` wrote", file, strings.Join(others, ", "))
		case der == nil:
			return nil, fmt.Errorf("%s: broken PEM (a -----BEGIN line but no block that decodes): write the CRL again", file)
		}
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid X.509 CRL (PEM or DER): %w", file, err)
	}
	return crl, nil
}

// ReadCRL reads and parses the CRL in file (PEM or DER), without checking
// its signature.
func ReadCRL(file string) (*x509.RevocationList, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("CRL file %s does not exist: check the path (quictun cert revoke and cert crl write <dir>/crl.pem)", file)
	}
	if err != nil {
		return nil, readError(err, file, "CRL")
	}
	return ParseCRL(data, file)
}

// LoadCRL reads the CRL in file and checks that one of cas signed it.
// Every error names the file.
func LoadCRL(file string, cas []*x509.Certificate) (*x509.RevocationList, error) {
	crl, err := ReadCRL(file)
	if err != nil {
		return nil, err
	}
	if err := CheckCRLSignature(crl, file, cas); err != nil {
		return nil, err
	}
	return crl, nil
}

// ErrCRLNotSignedByCA is wrapped by the error of a CRL that none of the
// given CAs signed.
var ErrCRLNotSignedByCA = errors.New("not signed by the CA")

// CheckCRLSignature checks that one of cas (the CA certificates peers are
// verified against) signed crl, read from file. A CRL from another CA is
// an error that names the file, the CRL's issuer and the CAs.
func CheckCRLSignature(crl *x509.RevocationList, file string, cas []*x509.Certificate) error {
	if len(cas) == 0 {
		return fmt.Errorf("%s: no CA certificate to check the CRL's signature with", file)
	}
	var firstErr error
	for _, ca := range cas {
		err := crl.CheckSignatureFrom(ca)
		if err == nil {
			return nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	names := make([]string, len(cas))
	for i, ca := range cas {
		names[i] = fmt.Sprintf("%q", ca.Subject.String())
	}
	return fmt.Errorf("%s is %w (CRL issuer %q, CA %s): %v: make the CRL with the CA that signed the clients' certificates",
		file, ErrCRLNotSignedByCA, crl.Issuer.String(), strings.Join(names, ", "), firstErr)
}

// CRLStale reports whether crl is past its nextUpdate at now: its issuer
// should have published a newer one. A CRL without nextUpdate is never
// stale.
func CRLStale(crl *x509.RevocationList, now time.Time) bool {
	return !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate)
}

// RevokedSerials returns the serial numbers crl lists.
func RevokedSerials(crl *x509.RevocationList) []*big.Int {
	out := make([]*big.Int, 0, len(crl.RevokedCertificateEntries))
	for _, e := range crl.RevokedCertificateEntries {
		out = append(out, e.SerialNumber)
	}
	return out
}

// FindRevoked returns crl's entry for serial, or nil.
func FindRevoked(crl *x509.RevocationList, serial *big.Int) *x509.RevocationListEntry {
	if crl == nil {
		return nil
	}
	for i := range crl.RevokedCertificateEntries {
		if crl.RevokedCertificateEntries[i].SerialNumber.Cmp(serial) == 0 {
			return &crl.RevokedCertificateEntries[i]
		}
	}
	return nil
}

// CRLOptions says what CRL CreateCRL makes.
type CRLOptions struct {
	// Previous is the CRL this one replaces, nil for none: its entries are
	// kept (with their revocation times and reasons) and the new CRL's
	// number is one more than its number. It must be signed by the same
	// CA (check it with CheckCRLSignature first).
	Previous *x509.RevocationList
	// Revoke are the certificates to add, by serial. A serial that
	// Previous lists already keeps its entry.
	Revoke []Revocation
	// Days is how long the CRL is current (thisUpdate to nextUpdate); 0
	// means DefaultCRLDays.
	Days int
	// Now is the CRL's thisUpdate; the zero value means time.Now().
	Now time.Time
}

// Revocation is one certificate to put on a CRL.
type Revocation struct {
	Serial *big.Int
	Reason RevocationReason
	// Time is when it was revoked; the zero value means the CRL's
	// thisUpdate.
	Time time.Time
}

// CreateCRL makes a CRL signed by ca with key, in PEM: version 2, with
// the authorityKeyIdentifier and cRLNumber extensions, thisUpdate now and
// nextUpdate Days later, every entry of Previous and those of Revoke (a
// reasonCode extension on each whose reason is not "unspecified", which
// RFC 5280 says to leave out). The CA must have the cRLSign key usage and a
// subjectKeyIdentifier, as CAs made by quictun, OpenSSL's v3_ca and
// easy-rsa have. It returns the PEM and the serials of Revoke that
// Previous listed already (they are not added twice).
func CreateCRL(ca *x509.Certificate, key stdcrypto.Signer, opts CRLOptions) (crlPEM []byte, already []*big.Int, err error) {
	if opts.Days == 0 {
		opts.Days = DefaultCRLDays
	}
	if opts.Days < 0 {
		return nil, nil, fmt.Errorf("make CRL: days %d: want a positive number", opts.Days)
	}
	if !publicKeyMatches(ca.PublicKey, key.Public()) {
		return nil, nil, fmt.Errorf("make CRL: the key does not belong to the CA certificate %q", ca.Subject.CommonName)
	}
	if ca.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return nil, nil, fmt.Errorf("make CRL: the CA certificate %q may not sign CRLs (its keyUsage lacks cRLSign): make a CA with keyUsage keyCertSign,cRLSign", ca.Subject.CommonName)
	}
	if len(ca.SubjectKeyId) == 0 {
		return nil, nil, fmt.Errorf("make CRL: the CA certificate %q has no subjectKeyIdentifier, which a CRL's authorityKeyIdentifier needs: make a CA with subjectKeyIdentifier=hash", ca.Subject.CommonName)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC().Truncate(time.Second)
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(1),
		ThisUpdate: now,
		NextUpdate: now.AddDate(0, 0, opts.Days),
	}
	if p := opts.Previous; p != nil {
		if p.Number != nil {
			tmpl.Number = new(big.Int).Add(p.Number, big.NewInt(1))
		}
		for _, e := range p.RevokedCertificateEntries {
			tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, keptEntry(e))
		}
	}
	for _, r := range opts.Revoke {
		if r.Serial == nil || r.Serial.Sign() <= 0 {
			return nil, nil, fmt.Errorf("make CRL: serial %v: want a positive serial number", r.Serial)
		}
		if slices.ContainsFunc(tmpl.RevokedCertificateEntries, func(e x509.RevocationListEntry) bool {
			return e.SerialNumber.Cmp(r.Serial) == 0
		}) {
			already = append(already, r.Serial)
			continue
		}
		at := r.Time
		if at.IsZero() {
			at = now
		}
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber: r.Serial, RevocationTime: at.UTC().Truncate(time.Second), ReasonCode: int(r.Reason),
		})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca, key)
	if err != nil {
		return nil, nil, fmt.Errorf("make CRL: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCRL, Bytes: der}), already, nil
}

// keptEntry returns a parsed entry as a template entry for a new CRL: the
// reason as ReasonCode (x509 writes that extension itself) and the other
// entry extensions (an invalidityDate OpenSSL wrote, say) as they were.
func keptEntry(e x509.RevocationListEntry) x509.RevocationListEntry {
	out := x509.RevocationListEntry{SerialNumber: e.SerialNumber, RevocationTime: e.RevocationTime, ReasonCode: e.ReasonCode}
	for _, ext := range e.Extensions {
		if !ext.Id.Equal(oidReasonCode) {
			out.ExtraExtensions = append(out.ExtraExtensions, ext)
		}
	}
	return out
}

// oidReasonCode is the CRL entry extension reasonCode (RFC 5280 5.3.1).
var oidReasonCode = asn1.ObjectIdentifier{2, 5, 29, 21}
