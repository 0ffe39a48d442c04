package device

import (
	"fmt"
	"strings"
)

// CheckName reports whether name can be used as an interface name as given:
// not empty, at most MaxNameLen bytes (the kernel would silently truncate a
// longer one), not "." or "..", and free of '/', ':', '%' (a kernel name
// template) and whitespace. It touches nothing on the system.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("device name is empty")
	case len(name) > MaxNameLen:
		return fmt.Errorf("device name %q is %d bytes long; Linux allows at most %d", name, len(name), MaxNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("device name %q is not allowed", name)
	}
	if i := strings.IndexAny(name, "/:% \t\n\r\v\f"); i >= 0 {
		return fmt.Errorf("device name %q contains %q, which interface names may not", name, string(name[i]))
	}
	return nil
}
