package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	qcrypto "github.com/quictun/quictun/crypto"
	"github.com/quictun/quictun/state"
)

// crlFlag is listen's --crl.
func crlFlag() cli.Flag {
	return &cli.StringFlag{Name: "crl", EnvVars: env("crl"), TakesFile: true,
		Usage: "refuse clients whose certificates this CRL `FILE` lists (PEM or DER, signed by --ca: from quictun cert revoke, openssl ca -gencrl or easyrsa gen-crl). " +
			"Re-read when the file is replaced and on reload (SIGHUP, quictun reload); the sessions of clients revoked since are closed"}
}

// crlPoll is how often the --crl file's metadata is looked at: a
// replaced file is in force within this much (and the sessions of the
// clients it revokes are closed at once).
const crlPoll = 250 * time.Millisecond

// serverCRL keeps a server's revocation set in step with its --crl file:
// read at start, again on every reload, and whenever the file changes on
// disk. A CRL that cannot be read or is not signed by the CA leaves the
// one in force as it is.
type serverCRL struct {
	revs *state.MemoryRevocations // what the server checks
	cas  []*x509.Certificate      // the --ca certificates; one must have signed the CRL
	log  *slog.Logger

	mu      sync.Mutex
	path    string             // "" for none; guarded by mu
	seen    os.FileInfo        // the file as it was when last read, nil if never; guarded by mu
	missing bool               // the file was gone at the last look (logged once); guarded by mu
	loaded  bool               // a CRL is in force; guarded by mu
	serials map[string]bool    // the serials in force, by hex; guarded by mu
	number  *big.Int           // CRL number in force, for the log; guarded by mu
	changes int                // SetPath calls that changed path; guarded by mu
	stop    context.CancelFunc // ends the watcher; guarded by mu
}

// newServerCRL loads the CRL in path ("" for none) checked against the CA
// certificates in caFile. An error names the file; nothing is started.
func newServerCRL(path, caFile string, log *slog.Logger) (*serverCRL, error) {
	cas, err := qcrypto.LoadCertificates(caFile)
	if err != nil {
		return nil, err
	}
	s := &serverCRL{revs: state.NewMemoryRevocations(), cas: cas, log: log, serials: map[string]bool{}}
	if path == "" {
		return s, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.path = path
	if err := s.loadLocked(); err != nil {
		return nil, fmt.Errorf("--crl: %w", err)
	}
	return s, nil
}

// Revocations returns the set the server is to check.
func (s *serverCRL) Revocations() state.Revocations { return s.revs }

// Path returns the CRL file in use, "" for none.
func (s *serverCRL) Path() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.path
}

// Reload reads the CRL file again. On an error the CRL in force stays.
func (s *serverCRL) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.path == "" {
		return nil
	}
	return s.loadLocked()
}

// SetPath switches to the CRL in path (a reload that changed the crl
// key): it is read first, and on an error nothing changes. "" stops
// revoking anyone.
func (s *serverCRL) SetPath(path string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if path == s.path {
		return nil
	}
	old, oldSeen, oldMissing := s.path, s.seen, s.missing
	s.path, s.seen, s.missing = path, nil, false
	if path == "" {
		s.changes++
		s.serials, s.number, s.loaded = map[string]bool{}, nil, false
		s.revs.Set(nil)
		s.log.Warn("CRL no longer in use: no certificate is revoked now", "was", old)
		return nil
	}
	if err := s.loadLocked(); err != nil {
		s.path, s.seen, s.missing = old, oldSeen, oldMissing
		return err
	}
	s.changes++
	return nil
}

// changeCount returns how many times SetPath switched files.
func (s *serverCRL) changeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changes
}

// loadLocked reads s.path and, if it is a CRL the CA signed, puts it in
// force and logs what it holds. s.mu is held.
func (s *serverCRL) loadLocked() error {
	fi, statErr := os.Stat(s.path)
	crl, err := qcrypto.LoadCRL(s.path, s.cas)
	if statErr == nil {
		s.seen = fi // a file that fails is not read again until it changes
	}
	if errors.Is(err, qcrypto.ErrCRLNotSignedByCA) {
		err = fmt.Errorf("%w (quictun cert crl --dir <the CA's dir> writes one)", err)
	}
	if err != nil {
		if s.loaded {
			return fmt.Errorf("%w (the CRL read before stays in force)", err)
		}
		return err
	}
	s.missing, s.loaded = false, true
	serials := qcrypto.RevokedSerials(crl)
	now := make(map[string]bool, len(serials))
	added := 0
	for _, n := range serials {
		k := n.Text(16)
		if !now[k] && !s.serials[k] {
			added++
		}
		now[k] = true
	}
	removed := 0
	for k := range s.serials {
		if !now[k] {
			removed++
		}
	}
	s.serials, s.number = now, crl.Number
	s.revs.Set(serials)
	attrs := []any{"file", s.path, "revoked", len(now), "added", added, "removed", removed,
		"number", crl.Number, "next_update", crl.NextUpdate.UTC().Format(time.RFC3339)}
	s.log.Info("CRL loaded", attrs...)
	if qcrypto.CRLStale(crl, time.Now()) {
		s.log.Warn("CRL is stale: past its nextUpdate; it is still enforced, but sign a new one (quictun cert crl)",
			"file", s.path, "next_update", crl.NextUpdate.UTC().Format(time.RFC3339))
	}
	return nil
}

// Watch starts polling the file's metadata (every crlPoll), and reads it
// again when it changed: replaced by a rename (a new inode, as cert
// revoke and most tools write it), rewritten in place (size or mtime), or
// back after being gone. It runs until stop is called.
func (s *serverCRL) Watch() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(crlPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.poll()
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// poll reads the file again if its metadata changed since it was last
// read. Errors are logged: nobody waits for them.
func (s *serverCRL) poll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.path == "" {
		return
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		if !s.missing {
			s.missing = true
			s.log.Warn("CRL file cannot be read; the CRL read before stays in force", "file", s.path, "err", err)
		}
		return
	}
	if s.seen != nil && !s.missing && sameFile(s.seen, fi) {
		return
	}
	s.missing = false
	if err := s.loadLocked(); err != nil {
		s.log.Error("CRL file changed but could not be loaded", "err", err)
	}
}

// sameFile reports whether a and b describe the same file content as far
// as its metadata tells: the same inode, size and modification time.
func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// withReload returns reload (the --config file's) followed by a fresh
// read of the CRL file, so that SIGHUP and `quictun reload` pick up a
// new CRL with or without a configuration file. A reload that switched to
// another CRL file has read it already. The CRL is read even when the
// configuration file has an error: a revocation must not wait for a
// typo to be fixed.
func (s *serverCRL) withReload(reload func() error) func() error {
	return func() error {
		before := s.changeCount()
		err := reload()
		if s.Path() == "" {
			return err
		}
		if errors.Is(err, errNoConfigFile) {
			err = nil
		}
		if s.changeCount() != before {
			return err
		}
		return errors.Join(err, s.Reload())
	}
}

// serverCRLMetadata is the key of listen's *serverCRL in the app's
// Metadata, where the reloader finds it.
const serverCRLMetadata = "quictun.crl"

// serverCRLOf returns the *serverCRL of the listen in c, or nil.
func serverCRLOf(c *cli.Context) *serverCRL {
	s, _ := c.App.Metadata[serverCRLMetadata].(*serverCRL)
	return s
}

// setupServerCRL loads --crl for listen and registers it for reloads.
func setupServerCRL(c *cli.Context, log *slog.Logger) (*serverCRL, error) {
	s, err := newServerCRL(c.String("crl"), c.String("ca"), log)
	if err != nil {
		return nil, usageError{err}
	}
	if c.App.Metadata == nil {
		c.App.Metadata = map[string]any{}
	}
	c.App.Metadata[serverCRLMetadata] = s
	return s, nil
}
