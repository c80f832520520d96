// Package geotest builds small MaxMind DB (MMDB) files for tests, with the
// GeoLite2-City record layout that package geo reads, so that tests in any
// package can give a geo.Locator a database without downloading one.
package geotest

import (
	"net"
	"os"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Record is one network of a test database. Empty or zero fields are left
// out of the record, as a real database leaves out what it does not know:
// a Record with only CIDR and ASN is an ASN-database record.
type Record struct {
	CIDR      string // e.g. "203.0.113.0/24" or "2001:db8::/32"
	Country   string // country.iso_code
	City      string // city.names.en
	Lat, Lon  float64
	HasCoords bool // write location.latitude/longitude
	ASN       uint // autonomous_system_number
}

// WriteMMDB writes records to path as an IPv6 MMDB (IPv4 networks are
// reachable as IPv4 and IPv4-mapped addresses). Reserved ranges, such as
// the documentation and private ones, are allowed. It fails t on any error.
func WriteMMDB(t testing.TB, path string, records []Record) {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            "Keygate-Test-City",
		Description:             map[string]string{"en": "keygate test database"},
		Languages:               []string{"en"},
		IncludeReservedNetworks: true,
		RecordSize:              28,
	})
	if err != nil {
		t.Fatalf("geotest: new tree: %v", err)
	}
	for _, r := range records {
		_, network, err := net.ParseCIDR(r.CIDR)
		if err != nil {
			t.Fatalf("geotest: record %q: %v", r.CIDR, err)
		}
		if err := tree.Insert(network, r.value()); err != nil {
			t.Fatalf("geotest: insert %q: %v", r.CIDR, err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("geotest: %v", err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		_ = f.Close()
		t.Fatalf("geotest: write %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("geotest: close %s: %v", path, err)
	}
}

func (r Record) value() mmdbtype.Map {
	m := mmdbtype.Map{}
	if r.Country != "" {
		m["country"] = mmdbtype.Map{"iso_code": mmdbtype.String(r.Country)}
	}
	if r.City != "" {
		m["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(r.City)}}
	}
	if r.HasCoords {
		m["location"] = mmdbtype.Map{
			"latitude":  mmdbtype.Float64(r.Lat),
			"longitude": mmdbtype.Float64(r.Lon),
		}
	}
	if r.ASN != 0 {
		m["autonomous_system_number"] = mmdbtype.Uint32(r.ASN)
	}
	return m
}
