package mfa

import (
	"testing"
	"time"
)

// FuzzMDS: a FIDO metadata BLOB — signed by a chain to the configured
// root, or anything at all — is refused with an error or loads, and a
// loaded one answers what keygate asks of it at start: which models are
// compromised (each indeed compromised, and named as a key name may be).
func FuzzMDS(f *testing.F) {
	fx := newMDSFixture(f)
	root := pemOf(fx.root)
	f.Fuzz(func(t *testing.T, signed bool, data []byte) {
		blob := data
		if signed {
			blob = []byte(fx.signBytes(t, data, fx.x5c))
		}
		m, err := ParseMDS(blob, root)
		if err != nil {
			return
		}
		now := time.Now()
		for _, cm := range m.Compromised(now) {
			if _, bad := m.Status(cm.AAGUID[:], now); !bad || cm.Model != cleanName(cm.Model) {
				t.Fatalf("model %v listed compromised: %+v", cm.AAGUID, cm)
			}
		}
	})
}
