// Package geo maps an IP address to a risk.Place: the named network from
// configuration it belongs to (the office, the VPN) and, when a MaxMind DB
// (MMDB) file is configured, its country, city, coordinates and
// autonomous system.
//
// # What it owns
//
// geo owns the geolocation side of the risk engine's inputs: opening and
// closing the MMDB files (a GeoLite2/GeoIP2 City-style database, which may
// carry autonomous_system_number in the same record, and optionally a
// separate ASN database), decoding the few fields keygate uses, and matching
// addresses against the configured named networks by longest prefix. A
// named network is matched before, and independently of, the MMDB, so a
// private office range that no MMDB knows still gets its name and trust.
//
// # Why the I/O lives here
//
// server/risk is a pure package: Decide takes a fully gathered
// risk.Signals and does no I/O, which keeps the engine deterministic and
// trivially testable. Reading a database file (memory-mapped where the
// platform allows) is I/O with failure modes, a lifetime (Open/Close) and a
// third-party dependency, so it stays out of risk. The caller locates the
// address here and puts the risk.Place it gets into risk.Signals.
//
// # Degrading without an MMDB
//
// An empty Config.MMDBPath (and ASNPath) is a supported mode, not an error:
// Locate then fills only Network and NetworkTrust, and every other field
// stays zero ("unknown"), which the engine treats as no evidence rather
// than as a new country. HasMMDB reports which mode is in force. A
// configured path that is missing, empty or not a valid MMDB makes Open
// fail with an error naming the file, so a typo in configuration is caught
// at start-up instead of silently turning geolocation off.
//
// Locate never fails: an invalid address, an address the database does not
// cover, a record without some fields, or a lookup error all leave the
// corresponding fields zero. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d)
// are unmapped and any zone is dropped before both the network match and
// the MMDB lookup.
//
// A Locator is safe for concurrent use, including Close concurrently with
// Locate: after Close, Locate keeps matching named networks and reports no
// MMDB data.
//
// Tests in other packages can build a small MMDB with package geotest.
package geo
