package quictun

import "fmt"

// kickReason is the reason phrase of the CONNECTION_CLOSE a kicked client
// receives; its log shows it as the reason the tunnel went down.
const kickReason = "kicked by the server's administrator"

// NoSessionError is returned by Server.Kick when no client of that
// identity has a session.
type NoSessionError struct {
	Name string // the identity asked for
}

// Error implements error.
func (e *NoSessionError) Error() string {
	return fmt.Sprintf("no client %q is connected", e.Name)
}

// Kick closes the session of the client with identity name now, with
// application close CloseKicked. It does not keep the client out: a
// quictun client redials (with its usual backoff, as after a server
// restart) and gets a new session; keeping a client out is the revocation
// list's job. Kick returns a *NoSessionError if the identity has no
// session, and logs one line for the session it closes.
func (s *Server) Kick(name string) error {
	s.mu.Lock()
	ss := s.sessions[name]
	s.mu.Unlock()
	if ss == nil {
		return &NoSessionError{Name: name}
	}
	ss.log.Info("client kicked: closing its session", "fingerprint", ss.id.Fingerprint)
	ss.conn.CloseWithError(CloseKicked, kickReason)
	return nil
}
