package device

import (
	"errors"
	"net/netip"
	"sync"
)

// RouteSet changes the routes through one link while it is up, as a
// tunnel client does when its server pushes other routes, and remembers
// which routes it added so that Undo removes those and no others.
type RouteSet struct {
	name string

	mu sync.Mutex
	// added holds, per route Update added, the undo that removes it; a
	// route that already existed through the link has a no-op undo.
	added map[netip.Prefix]func() error // guarded by mu
}

// NewRouteSet returns a RouteSet for the link named name.
func NewRouteSet(name string) *RouteSet {
	return &RouteSet{name: name, added: make(map[netip.Prefix]func() error)}
}

// Update removes the routes in remove through the link (whoever added
// them: Configure, an earlier Update or `ip route add`; absent ones are
// skipped), then adds those in add (on-link, as AddRoutes does; existing
// ones are skipped). Each route is tried even when another fails, and the
// errors are joined. Repeating an Update is harmless, so a caller may
// retry a failed one whole.
func (s *RouteSet) Update(add, remove []netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, p := range remove {
		// One at a time, as for add: a route is forgotten only once it
		// is gone, so that Undo still removes one whose removal failed.
		if err := RemoveRoutes(s.name, []netip.Prefix{p}); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(s.added, p)
	}
	for _, p := range add {
		if _, ok := s.added[p]; ok {
			continue
		}
		undo, err := AddRoutes(s.name, []netip.Prefix{p})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.added[p] = undo
	}
	return errors.Join(errs...)
}

// Undo removes the routes Update added and has not removed since (routes
// that were there before are left), and forgets them.
func (s *RouteSet) Undo() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for p, undo := range s.added {
		if err := undo(); err != nil {
			errs = append(errs, err)
		}
		delete(s.added, p)
	}
	return errors.Join(errs...)
}
