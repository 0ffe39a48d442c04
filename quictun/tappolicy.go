package quictun

import (
	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/quictun/internal/hub"
)

// tapPolicy returns what the TAP switch enforces now (ServerConfig's
// IsolateClients and PinMACs, or what SetTAPPolicy set since). It is read
// for every frame: two atomic loads, no lock.
func (s *Server) tapPolicy() hub.TAPPolicy[*session] {
	return hub.TAPPolicy[*session]{Local: s.local, Isolate: s.isolate.Load(), PinMACs: s.pinMACs.Load()}
}

// SetTAPPolicy sets ServerConfig.IsolateClients and PinMACs of a running
// server; the next frame is switched by them. Connected clients stay
// connected. Turning pinning on pins every MAC the switch holds at that
// moment to the port it is on. Either setting on a TUN server returns a
// *ConfigError for its field and changes nothing. It may be called at any
// time, also before Serve.
func (s *Server) SetTAPPolicy(isolateClients, pinMACs bool) error {
	if err := checkTAPPolicy(s.mode, isolateClients, pinMACs); err != nil {
		return err
	}
	wasIsolated := s.isolate.Swap(isolateClients)
	wasPinned := s.pinMACs.Swap(pinMACs)
	if wasIsolated != isolateClients || wasPinned != pinMACs {
		s.log.Info("TAP switch policy changed", "isolate_clients", isolateClients, "pin_macs", pinMACs)
	}
	return nil
}

// checkTAPPolicy checks that the TAP switch's policy is set only on a TAP
// server.
func checkTAPPolicy(mode device.Kind, isolateClients, pinMACs bool) error {
	if mode == device.TAP {
		return nil
	}
	switch {
	case isolateClients:
		return configErr("IsolateClients", "applies to TAP mode only; in TUN mode access rules say which clients reach each other")
	case pinMACs:
		return configErr("PinMACs", "applies to TAP mode only; in TUN mode a client's source addresses are always checked")
	}
	return nil
}
