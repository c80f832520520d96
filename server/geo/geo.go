package geo

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2/mmdbdata"

	"github.com/keygate/keygate/server/risk"
)

// Network is a named network from configuration, such as the office
// (risk.TrustTrusted) or the corporate VPN (risk.TrustKnown).
type Network struct {
	Name     string
	Prefixes []netip.Prefix
	Trust    risk.Trust
}

// Config configures a Locator.
type Config struct {
	// MMDBPath is a MaxMind DB file with GeoLite2/GeoIP2 City-style records
	// (country, registered_country, city, location; autonomous_system_number
	// is read too when the file carries it). "" means no geolocation:
	// only Networks are matched.
	MMDBPath string
	// ASNPath is an optional second MaxMind DB file with ASN-style records
	// (autonomous_system_number), consulted when MMDBPath has no ASN for
	// the address. It may be set without MMDBPath.
	ASNPath string
	// Networks are matched before the MMDB, longest prefix first.
	Networks []Network
}

// Locator maps addresses to places. It is safe for concurrent use.
type Locator struct {
	nets []namedPrefix // sorted by prefix length, longest first

	mu   sync.RWMutex // guards city and asn against Close during lookups
	city *maxminddb.Reader
	asn  *maxminddb.Reader
}

type namedPrefix struct {
	prefix netip.Prefix
	name   string
	trust  risk.Trust
}

// Open validates cfg and opens its MMDB files. A missing, empty or corrupt
// file is an error; an empty path is not (see the package documentation).
func Open(cfg Config) (*Locator, error) {
	nets, err := compileNetworks(cfg.Networks)
	if err != nil {
		return nil, err
	}
	l := &Locator{nets: nets}
	if cfg.MMDBPath != "" {
		if l.city, err = openMMDB(cfg.MMDBPath); err != nil {
			return nil, err
		}
	}
	if cfg.ASNPath != "" {
		if l.asn, err = openMMDB(cfg.ASNPath); err != nil {
			_ = l.Close()
			return nil, err
		}
	}
	return l, nil
}

func openMMDB(path string) (*maxminddb.Reader, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geo: open MMDB %q: %w", path, err)
	}
	// maxminddb.Open checks the metadata and the sizes it declares. Probe a
	// few lookups too, so that a damaged search tree or data section fails
	// here rather than lookup by lookup. (Reader.Verify would walk the whole
	// file, which is slow on a City database and rejects some databases that
	// read fine.)
	if err := probe(r); err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("geo: MMDB %q is corrupt: %w", path, err)
	}
	return r, nil
}

func compileNetworks(networks []Network) ([]namedPrefix, error) {
	var out []namedPrefix
	names := make(map[string]bool, len(networks))
	owner := make(map[netip.Prefix]string)
	for i, n := range networks {
		if n.Name == "" {
			return nil, fmt.Errorf("geo: network #%d has no name", i+1)
		}
		if names[n.Name] {
			return nil, fmt.Errorf("geo: network %q is defined twice", n.Name)
		}
		names[n.Name] = true
		if n.Trust != risk.TrustKnown && n.Trust != risk.TrustTrusted {
			return nil, fmt.Errorf("geo: network %q: trust must be known or trusted, got %d", n.Name, n.Trust)
		}
		if len(n.Prefixes) == 0 {
			return nil, fmt.Errorf("geo: network %q has no prefixes", n.Name)
		}
		for _, p := range n.Prefixes {
			if !p.IsValid() {
				return nil, fmt.Errorf("geo: network %q: invalid prefix %v", n.Name, p)
			}
			p = normalizePrefix(p)
			if prev, dup := owner[p]; dup {
				if prev == n.Name {
					continue
				}
				return nil, fmt.Errorf("geo: prefix %v is in both network %q and network %q", p, prev, n.Name)
			}
			owner[p] = n.Name
			out = append(out, namedPrefix{prefix: p, name: n.Name, trust: n.Trust})
		}
	}
	// Longest prefix first, so the first match is the most specific one.
	slices.SortStableFunc(out, func(a, b namedPrefix) int { return b.prefix.Bits() - a.prefix.Bits() })
	return out, nil
}

// normalizePrefix masks p and turns an IPv4-mapped IPv6 prefix
// (::ffff:10.0.0.0/104) into its IPv4 form, matching how Locate unmaps
// addresses.
func normalizePrefix(p netip.Prefix) netip.Prefix {
	addr := p.Addr().WithZone("")
	if addr.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(addr.Unmap(), p.Bits()-96).Masked()
	}
	return netip.PrefixFrom(addr, p.Bits()).Masked()
}

var (
	probes4 = []netip.Addr{
		netip.AddrFrom4([4]byte{0, 0, 0, 0}),
		netip.AddrFrom4([4]byte{1, 1, 1, 1}),
		netip.AddrFrom4([4]byte{128, 0, 0, 1}),
		netip.AddrFrom4([4]byte{255, 255, 255, 255}),
	}
	probes6 = []netip.Addr{
		netip.IPv6Unspecified(),
		netip.MustParseAddr("2001:4860::1"),
		netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
	}
)

// probe looks up and decodes a spread of addresses. Lookup errors and
// malformed data are corruption; a value of an unexpected type is not (it
// only leaves that field unknown).
func probe(r *maxminddb.Reader) error {
	probes := probes4
	if r.Metadata.IPVersion == 6 {
		probes = append(slices.Clip(probes), probes6...)
	}
	for _, ip := range probes {
		var rec record
		err := r.Lookup(ip).Decode(&rec)
		var typeErr maxminddb.UnmarshalTypeError
		if err != nil && !errors.As(err, &typeErr) {
			return fmt.Errorf("looking up %v: %w", ip, err)
		}
	}
	return nil
}

// record is the subset of a GeoLite2/GeoIP2 City (or ASN) record keygate
// reads. Fields absent from the database stay zero.
type record struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
	City struct {
		Names struct {
			En string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"city"`
	Location struct {
		Latitude  optFloat `maxminddb:"latitude"`
		Longitude optFloat `maxminddb:"longitude"`
	} `maxminddb:"location"`
	ASN uint `maxminddb:"autonomous_system_number"`
}

// optFloat is a float that remembers whether the record had it, without
// the allocation a *float64 field would cost on every lookup.
type optFloat struct {
	v  float64
	ok bool
}

// UnmarshalMaxMindDBCursor implements mmdbdata.CursorUnmarshaler.
func (f *optFloat) UnmarshalMaxMindDBCursor(c mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	v, next, err := c.ReadFloat()
	if err != nil {
		return mmdbdata.Cursor{}, mmdbdata.NormalizeUnmarshalError[optFloat](err)
	}
	f.v, f.ok = v, true
	return next, nil
}

type asnRecord struct {
	ASN uint `maxminddb:"autonomous_system_number"`
}

// Locate returns where ip is. It never fails: whatever is unknown stays
// zero. The named network is the configured one with the longest prefix
// containing ip.
func (l *Locator) Locate(ip netip.Addr) risk.Place {
	var p risk.Place
	if !ip.IsValid() {
		return p
	}
	ip = ip.WithZone("").Unmap()
	for _, n := range l.nets {
		if n.prefix.Contains(ip) {
			p.Network, p.NetworkTrust = n.name, n.trust
			break
		}
	}

	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.city != nil {
		var rec record
		// A lookup or decode error leaves rec (partly) zero: unknown.
		_ = l.city.Lookup(ip).Decode(&rec)
		p.Country = rec.Country.ISOCode
		if p.Country == "" {
			p.Country = rec.RegisteredCountry.ISOCode
		}
		p.City = rec.City.Names.En
		if lat, lon := rec.Location.Latitude, rec.Location.Longitude; lat.ok && lon.ok {
			p.Lat, p.Lon, p.HasCoords = lat.v, lon.v, true
		}
		p.ASN = rec.ASN
	}
	if p.ASN == 0 && l.asn != nil {
		var rec asnRecord
		_ = l.asn.Lookup(ip).Decode(&rec)
		p.ASN = rec.ASN
	}
	return p
}

// HasMMDB reports whether an MMDB file (MMDBPath or ASNPath) is open, that
// is whether Locate can fill more than the named network.
func (l *Locator) HasMMDB() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.city != nil || l.asn != nil
}

// Close releases the MMDB files. It is safe to call more than once and
// concurrently with Locate; afterwards Locate matches named networks only.
func (l *Locator) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, r := range []**maxminddb.Reader{&l.city, &l.asn} {
		if *r != nil {
			errs = append(errs, (*r).Close())
			*r = nil
		}
	}
	return errors.Join(errs...)
}
