package device

import (
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string // substring; empty means valid
	}{
		{name: "short", in: "qt0"},
		{name: "max length", in: strings.Repeat("a", MaxNameLen)},
		{name: "empty", in: "", wantErr: "empty"},
		{name: "too long", in: strings.Repeat("a", MaxNameLen+1), wantErr: "at most 15"},
		{name: "dot", in: ".", wantErr: "not allowed"},
		{name: "dotdot", in: "..", wantErr: "not allowed"},
		{name: "slash", in: "a/b", wantErr: `contains "/"`},
		{name: "colon", in: "eth0:1", wantErr: `contains ":"`},
		{name: "template", in: "tun%d", wantErr: `contains "%"`},
		{name: "space", in: "a b", wantErr: `contains " "`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckName(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckName(%q) = %v, want nil", tt.in, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("CheckName(%q) = %v, want error containing %q", tt.in, err, tt.wantErr)
			}
			if tt.in != "" && !strings.Contains(err.Error(), tt.in) {
				t.Errorf("error %q does not name %q", err, tt.in)
			}
		})
	}
}
