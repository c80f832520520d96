package geo_test

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/keygate/keygate/server/geo"
	"github.com/keygate/keygate/server/geo/geotest"
	"github.com/keygate/keygate/server/risk"
)

var cityRecords = []geotest.Record{
	{CIDR: "203.0.113.0/24", Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.40, HasCoords: true, ASN: 3320},
	{CIDR: "198.51.100.0/24", Country: "AU", City: "Sydney", Lat: -33.87, Lon: 151.21, HasCoords: true},
	{CIDR: "192.0.2.0/24", Country: "US"},
	{CIDR: "100.64.0.0/24", Country: "GH", Lat: 0, Lon: 0, HasCoords: true},
	{CIDR: "2001:db8:1::/48", Country: "FR", City: "Paris", Lat: 48.86, Lon: 2.35, HasCoords: true, ASN: 3215},
}

var officeAndVPN = []geo.Network{
	{Name: "vpn", Trust: risk.TrustKnown, Prefixes: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("203.0.113.0/24"),
	}},
	{Name: "office", Trust: risk.TrustTrusted, Prefixes: []netip.Prefix{
		netip.MustParsePrefix("10.1.0.0/16"),
		netip.MustParsePrefix("203.0.113.0/28"),
		netip.MustParsePrefix("fd00:1::/32"),
	}},
}

func writeCity(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "city.mmdb")
	geotest.WriteMMDB(t, path, cityRecords)
	return path
}

func open(t testing.TB, cfg geo.Config) *geo.Locator {
	t.Helper()
	l, err := geo.Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestLocate(t *testing.T) {
	l := open(t, geo.Config{MMDBPath: writeCity(t)})
	if !l.HasMMDB() {
		t.Fatal("HasMMDB = false with an MMDB configured")
	}

	t.Run("an address in a network with full data yields country, city, coordinates and ASN", func(t *testing.T) {
		want := risk.Place{Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.40, HasCoords: true, ASN: 3320}
		if got := l.Locate(addr("203.0.113.77")); got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
	t.Run("southern and eastern coordinates keep their signs", func(t *testing.T) {
		want := risk.Place{Country: "AU", City: "Sydney", Lat: -33.87, Lon: 151.21, HasCoords: true}
		if got := l.Locate(addr("198.51.100.1")); got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
	t.Run("a record without city or location yields the country only and no coordinates", func(t *testing.T) {
		want := risk.Place{Country: "US"}
		if got := l.Locate(addr("192.0.2.9")); got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
	t.Run("coordinates of exactly zero are present when the record has them", func(t *testing.T) {
		got := l.Locate(addr("100.64.0.1"))
		if !got.HasCoords || got.Lat != 0 || got.Lon != 0 {
			t.Errorf("got %+v, want HasCoords at 0,0", got)
		}
	})
	t.Run("an IPv6 address is looked up in the IPv6 tree", func(t *testing.T) {
		want := risk.Place{Country: "FR", City: "Paris", Lat: 48.86, Lon: 2.35, HasCoords: true, ASN: 3215}
		if got := l.Locate(addr("2001:db8:1::42")); got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
	t.Run("an IPv4-mapped IPv6 address is located as its IPv4 address", func(t *testing.T) {
		if got, want := l.Locate(addr("::ffff:203.0.113.77")), l.Locate(addr("203.0.113.77")); got != want || got.Country != "DE" {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
	t.Run("an address with a zone is located as the address without it", func(t *testing.T) {
		if got := l.Locate(addr("2001:db8:1::42%eth0")); got.Country != "FR" {
			t.Errorf("got %+v, want FR", got)
		}
	})
	t.Run("an address the database does not cover yields a zero place", func(t *testing.T) {
		for _, s := range []string{"8.8.8.8", "2001:db8:2::1", "::ffff:8.8.8.8"} {
			if got := l.Locate(addr(s)); got != (risk.Place{}) {
				t.Errorf("%s: got %+v, want zero", s, got)
			}
		}
	})
	t.Run("private and loopback addresses without an entry yield a zero place", func(t *testing.T) {
		for _, s := range []string{"10.1.2.3", "192.168.1.1", "127.0.0.1", "::1", "fd00:1::5"} {
			if got := l.Locate(addr(s)); got != (risk.Place{}) {
				t.Errorf("%s: got %+v, want zero", s, got)
			}
		}
	})
	t.Run("the invalid zero address yields a zero place", func(t *testing.T) {
		if got := l.Locate(netip.Addr{}); got != (risk.Place{}) {
			t.Errorf("got %+v, want zero", got)
		}
	})
}

// writeRaw writes an MMDB whose records are given as raw maps, for layouts
// geotest.Record cannot express.
func writeRaw(t *testing.T, records map[string]mmdbtype.Map) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "raw.mmdb")
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "Test", IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, m := range records {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(n, m); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRegisteredCountryFallback(t *testing.T) {
	reg := func(cc string) mmdbtype.Map { return mmdbtype.Map{"iso_code": mmdbtype.String(cc)} }
	path := writeRaw(t, map[string]mmdbtype.Map{
		"192.0.2.0/25":   {"registered_country": reg("NL")},
		"192.0.2.128/25": {"country": reg("BE"), "registered_country": reg("NL")},
	})
	l := open(t, geo.Config{MMDBPath: path})

	t.Run("a record without country falls back to registered_country", func(t *testing.T) {
		if got := l.Locate(addr("192.0.2.1")).Country; got != "NL" {
			t.Errorf("Country = %q, want NL", got)
		}
	})
	t.Run("country wins over registered_country when both are present", func(t *testing.T) {
		if got := l.Locate(addr("192.0.2.200")).Country; got != "BE" {
			t.Errorf("Country = %q, want BE", got)
		}
	})
}

func TestASN(t *testing.T) {
	dir := t.TempDir()
	asnPath := filepath.Join(dir, "asn.mmdb")
	geotest.WriteMMDB(t, asnPath, []geotest.Record{
		{CIDR: "198.51.100.0/24", ASN: 1221},
		{CIDR: "203.0.113.0/24", ASN: 9999},
		{CIDR: "8.8.8.0/24", ASN: 15169},
	})
	cityPath := writeCity(t)

	t.Run("an ASN carried by the city database is read from it", func(t *testing.T) {
		l := open(t, geo.Config{MMDBPath: cityPath})
		if got := l.Locate(addr("203.0.113.1")).ASN; got != 3320 {
			t.Errorf("ASN = %d, want 3320", got)
		}
	})
	t.Run("a separate ASN database fills the ASN the city database lacks", func(t *testing.T) {
		l := open(t, geo.Config{MMDBPath: cityPath, ASNPath: asnPath})
		got := l.Locate(addr("198.51.100.1"))
		if got.ASN != 1221 || got.Country != "AU" {
			t.Errorf("got %+v, want AU with ASN 1221", got)
		}
	})
	t.Run("the city database's own ASN takes precedence over the ASN database", func(t *testing.T) {
		l := open(t, geo.Config{MMDBPath: cityPath, ASNPath: asnPath})
		if got := l.Locate(addr("203.0.113.1")).ASN; got != 3320 {
			t.Errorf("ASN = %d, want 3320", got)
		}
	})
	t.Run("an ASN database alone yields the ASN and nothing else", func(t *testing.T) {
		l := open(t, geo.Config{ASNPath: asnPath})
		if !l.HasMMDB() {
			t.Error("HasMMDB = false with an ASN database")
		}
		if got, want := l.Locate(addr("8.8.8.8")), (risk.Place{ASN: 15169}); got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
}

func TestNetworks(t *testing.T) {
	l := open(t, geo.Config{MMDBPath: writeCity(t), Networks: officeAndVPN})

	t.Run("the longest matching prefix names the network", func(t *testing.T) {
		cases := []struct {
			ip    string
			name  string
			trust risk.Trust
		}{
			{"10.1.2.3", "office", risk.TrustTrusted},
			{"10.2.0.1", "vpn", risk.TrustKnown},
			{"203.0.113.5", "office", risk.TrustTrusted},
			{"203.0.113.100", "vpn", risk.TrustKnown},
			{"fd00:1::5", "office", risk.TrustTrusted},
			{"198.51.100.1", "", risk.TrustNone},
		}
		for _, c := range cases {
			got := l.Locate(addr(c.ip))
			if got.Network != c.name || got.NetworkTrust != c.trust {
				t.Errorf("%s: got network %q trust %d, want %q trust %d", c.ip, got.Network, got.NetworkTrust, c.name, c.trust)
			}
		}
	})
	t.Run("a named network and the MMDB data are both reported for the same address", func(t *testing.T) {
		want := risk.Place{Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.40, HasCoords: true, ASN: 3320,
			Network: "office", NetworkTrust: risk.TrustTrusted}
		if got := l.Locate(addr("203.0.113.5")); got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
	t.Run("a private address in a named network gets only the network", func(t *testing.T) {
		want := risk.Place{Network: "office", NetworkTrust: risk.TrustTrusted}
		if got := l.Locate(addr("10.1.0.1")); got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
	t.Run("an IPv4-mapped address matches an IPv4 named network", func(t *testing.T) {
		if got := l.Locate(addr("::ffff:10.1.2.3")); got.Network != "office" {
			t.Errorf("got %+v, want office", got)
		}
	})
	t.Run("an IPv4-mapped prefix in configuration matches plain IPv4 addresses", func(t *testing.T) {
		l := open(t, geo.Config{Networks: []geo.Network{{Name: "lab", Trust: risk.TrustKnown,
			Prefixes: []netip.Prefix{netip.MustParsePrefix("::ffff:172.16.0.0/108")}}}})
		if got := l.Locate(addr("172.16.9.9")); got.Network != "lab" {
			t.Errorf("got %+v, want lab", got)
		}
		if got := l.Locate(addr("172.32.0.1")); got.Network != "" {
			t.Errorf("got %+v, want no network", got)
		}
	})
	t.Run("an unmasked prefix in configuration is masked", func(t *testing.T) {
		l := open(t, geo.Config{Networks: []geo.Network{{Name: "home", Trust: risk.TrustKnown,
			Prefixes: []netip.Prefix{netip.MustParsePrefix("192.168.7.77/24")}}}})
		if got := l.Locate(addr("192.168.7.1")); got.Network != "home" {
			t.Errorf("got %+v, want home", got)
		}
	})
}

func TestNoMMDB(t *testing.T) {
	l := open(t, geo.Config{Networks: officeAndVPN})

	t.Run("HasMMDB reports false without an MMDB path", func(t *testing.T) {
		if l.HasMMDB() {
			t.Error("HasMMDB = true")
		}
	})
	t.Run("named networks are still matched", func(t *testing.T) {
		want := risk.Place{Network: "vpn", NetworkTrust: risk.TrustKnown}
		if got := l.Locate(addr("10.9.9.9")); got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
	t.Run("any other address yields a zero place", func(t *testing.T) {
		if got := l.Locate(addr("198.51.100.1")); got != (risk.Place{}) {
			t.Errorf("got %+v, want zero", got)
		}
	})
	t.Run("an empty configuration locates nothing and does not fail", func(t *testing.T) {
		l := open(t, geo.Config{})
		if got := l.Locate(addr("203.0.113.1")); got != (risk.Place{}) {
			t.Errorf("got %+v, want zero", got)
		}
	})
}

func TestUnexpectedTypes(t *testing.T) {
	t.Run("a field of an unexpected type neither fails Open nor Locate", func(t *testing.T) {
		path := writeRaw(t, map[string]mmdbtype.Map{
			"0.0.0.0/0": {"autonomous_system_number": mmdbtype.String("AS3320")},
		})
		l := open(t, geo.Config{MMDBPath: path})
		if got := l.Locate(addr("192.0.2.1")); got.ASN != 0 {
			t.Errorf("got %+v, want no ASN", got)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	good := writeCity(t)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Damage the search tree but keep the metadata at the end intact, so
	// only a full verification notices.
	damaged := append([]byte(nil), data...)
	for i := 0; i < 64 && i < len(damaged)/2; i++ {
		damaged[i] = 0xff
	}

	cases := []struct {
		sentence string
		cfg      geo.Config
		want     string
	}{
		{"a missing MMDB file is an error naming it",
			geo.Config{MMDBPath: filepath.Join(dir, "missing.mmdb")}, "missing.mmdb"},
		{"a missing ASN file is an error naming it",
			geo.Config{MMDBPath: good, ASNPath: filepath.Join(dir, "asn-missing.mmdb")}, "asn-missing.mmdb"},
		{"an empty file is an error",
			geo.Config{MMDBPath: write("empty.mmdb", nil)}, "empty.mmdb"},
		{"a file that is not an MMDB is an error",
			geo.Config{MMDBPath: write("garbage.mmdb", []byte(strings.Repeat("not a maxmind db\n", 100)))}, "garbage.mmdb"},
		{"a truncated MMDB is an error",
			geo.Config{MMDBPath: write("truncated.mmdb", data[:len(data)/2])}, "truncated.mmdb"},
		{"an MMDB with a damaged search tree is an error",
			geo.Config{MMDBPath: write("damaged.mmdb", damaged)}, "corrupt"},
		{"a network without a name is an error",
			geo.Config{Networks: []geo.Network{{Trust: risk.TrustKnown, Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}}, "no name"},
		{"a network without prefixes is an error",
			geo.Config{Networks: []geo.Network{{Name: "vpn", Trust: risk.TrustKnown}}}, "no prefixes"},
		{"a network with trust none is an error",
			geo.Config{Networks: []geo.Network{{Name: "vpn", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}}, "trust"},
		{"a network with an invalid prefix is an error",
			geo.Config{Networks: []geo.Network{{Name: "vpn", Trust: risk.TrustKnown, Prefixes: []netip.Prefix{{}}}}}, "invalid prefix"},
		{"a network defined twice is an error",
			geo.Config{Networks: []geo.Network{
				{Name: "vpn", Trust: risk.TrustKnown, Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
				{Name: "vpn", Trust: risk.TrustKnown, Prefixes: []netip.Prefix{netip.MustParsePrefix("11.0.0.0/8")}},
			}}, "twice"},
		{"the same prefix in two networks is an error",
			geo.Config{Networks: []geo.Network{
				{Name: "vpn", Trust: risk.TrustKnown, Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
				{Name: "office", Trust: risk.TrustTrusted, Prefixes: []netip.Prefix{netip.MustParsePrefix("10.1.2.3/8")}},
			}}, "both"},
	}
	for _, c := range cases {
		t.Run(c.sentence, func(t *testing.T) {
			l, err := geo.Open(c.cfg)
			if err == nil {
				_ = l.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "geo: ") {
				t.Errorf("error %q does not start with \"geo: \" and mention %q", err, c.want)
			}
		})
	}
}

func TestClose(t *testing.T) {
	t.Run("Close is idempotent and Locate afterwards matches networks only", func(t *testing.T) {
		l, err := geo.Open(geo.Config{MMDBPath: writeCity(t), Networks: officeAndVPN})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if l.HasMMDB() {
			t.Error("HasMMDB = true after Close")
		}
		want := risk.Place{Network: "vpn", NetworkTrust: risk.TrustKnown}
		if got := l.Locate(addr("203.0.113.100")); got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
}

func TestConcurrentLocate(t *testing.T) {
	t.Run("many goroutines locating at once get consistent answers", func(t *testing.T) {
		l := open(t, geo.Config{MMDBPath: writeCity(t), Networks: officeAndVPN})
		ips := []netip.Addr{addr("203.0.113.5"), addr("198.51.100.1"), addr("192.0.2.9"),
			addr("::ffff:203.0.113.77"), addr("10.1.2.3"), addr("8.8.8.8"), addr("2001:db8:1::1")}
		want := make([]risk.Place, len(ips))
		for i, ip := range ips {
			want[i] = l.Locate(ip)
		}
		var wg sync.WaitGroup
		for g := range 32 {
			wg.Go(func() {
				for i := range 200 {
					k := (g + i) % len(ips)
					if got := l.Locate(ips[k]); got != want[k] {
						t.Errorf("%v: got %+v, want %+v", ips[k], got, want[k])
						return
					}
				}
			})
		}
		wg.Wait()
	})
	t.Run("Close while goroutines are locating neither crashes nor races", func(t *testing.T) {
		l, err := geo.Open(geo.Config{MMDBPath: writeCity(t), Networks: officeAndVPN})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 500 {
					p := l.Locate(addr("203.0.113.5"))
					if p.Network != "office" || (p.Country != "DE" && p.Country != "") {
						t.Errorf("got %+v", p)
						return
					}
				}
			})
		}
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		wg.Wait()
	})
}

func BenchmarkLocate(b *testing.B) {
	l := open(b, geo.Config{MMDBPath: writeCity(b), Networks: officeAndVPN})
	ips := []netip.Addr{addr("203.0.113.77"), addr("198.51.100.1"), addr("192.0.2.9"),
		addr("8.8.8.8"), addr("10.1.2.3"), addr("2001:db8:1::1"), addr("::ffff:198.51.100.7")}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		_ = l.Locate(ips[i%len(ips)])
		i++
	}
}
