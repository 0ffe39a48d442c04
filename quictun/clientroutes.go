package quictun

import (
	"net/netip"

	"github.com/quictun/quictun/third_party/quic-go"
)

// setInstalledRoutes records the routes SetupDevice installed with the
// device.
func (c *Client) setInstalledRoutes(routes []netip.Prefix) {
	c.routesMu.Lock()
	defer c.routesMu.Unlock()
	c.routes = uniquePrefixes(routes)
	c.status.setRoutes(c.routes)
}

// applyRoutes brings the device's routes to the server's list: from a
// config at a reconnect (conn nil), or from a "routes" message on conn,
// which is ignored once conn is no longer the current connection (a late
// message of a connection that has ended must not undo what a newer
// config installed). One log line per change.
func (c *Client) applyRoutes(conn *quic.Conn, routes []netip.Prefix) {
	c.routesMu.Lock()
	defer c.routesMu.Unlock()
	if conn != nil && c.conn.Load() != conn {
		return
	}
	add, remove := diffPrefixes(c.routes, routes)
	if len(add) == 0 && len(remove) == 0 {
		return
	}
	via := "reconnect"
	if conn != nil {
		via = "server push"
	}
	attrs := []any{"routes", fmtPrefixes(routes), "added", fmtPrefixes(add), "removed", fmtPrefixes(remove), "via", via}
	if c.cfg.UpdateRoutes == nil {
		c.log.Warn("the server's routes changed; the device's routes are left as they are", attrs...)
	} else {
		if err := c.cfg.UpdateRoutes(add, remove); err != nil {
			c.log.Warn("could not apply the server's new routes; retrying at the next change or reconnect",
				append(attrs, "err", err)...)
			return
		}
		c.log.Info("routes changed", attrs...)
	}
	c.routes = uniquePrefixes(routes)
	c.status.setRoutes(c.routes)
}

// setRoutes records the routes Status reports.
func (cs *clientState) setRoutes(routes []netip.Prefix) {
	cs.mu.Lock()
	cs.routes = routes
	cs.mu.Unlock()
}
