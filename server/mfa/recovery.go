package mfa

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

const recoveryCodeCount = 10

var recoveryEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newRecoveryCodes returns codes to show once ("ABCDE-FGHIJ", 50 bits each)
// and the keyed hashes to store. High entropy makes a fast keyed hash
// enough; the key keeps a stolen table from being checked offline.
func newRecoveryCodes(key []byte) (codes []string, hashes [][]byte, err error) {
	for range recoveryCodeCount {
		b := make([]byte, 7)
		if _, err := rand.Read(b); err != nil {
			return nil, nil, err
		}
		s := recoveryEncoding.EncodeToString(b)[:10]
		codes = append(codes, s[:5]+"-"+s[5:])
		hashes = append(hashes, hashRecoveryCode(key, s))
	}
	return codes, hashes, nil
}

// normalizeRecoveryCode accepts the code as typed: any case, with or
// without the dash or spaces.
func normalizeRecoveryCode(s string) string {
	s = strings.ToUpper(s)
	return strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, s)
}

func hashRecoveryCode(key []byte, normalized string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(normalized))
	return m.Sum(nil)
}
