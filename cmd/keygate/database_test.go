package main

import (
	"strings"
	"testing"
)

func TestParseDatabaseURL(t *testing.T) {
	tests := []struct {
		name, raw string
		dsn       string // "" for refused
		where     string
	}{
		{"a URL gets a connect timeout", "postgres://kg:pw@db.example.com/keygate",
			"postgres://kg:pw@db.example.com/keygate?connect_timeout=10", "host db.example.com port 5432 database keygate"},
		{"a URL's query keeps its parameters", "postgresql://kg@db.example.com:6543/keygate?sslmode=require",
			"postgresql://kg@db.example.com:6543/keygate?sslmode=require&connect_timeout=10", "host db.example.com port 6543 database keygate"},
		{"a URL's own connect timeout is kept", "postgres://kg@db.example.com/keygate?connect_timeout=3",
			"postgres://kg@db.example.com/keygate?connect_timeout=3", "host db.example.com port 5432 database keygate"},
		{"a key=value string gets a connect timeout", "host=/run/postgresql dbname=keygate",
			"host=/run/postgresql dbname=keygate connect_timeout=10", "host /run/postgresql port 5432 database keygate"},
		{"a key=value string may hold :// in a value", "host=db.example.com dbname=keygate application_name='a://b'",
			"host=db.example.com dbname=keygate application_name='a://b' connect_timeout=10", "host db.example.com port 5432 database keygate"},
		{"another scheme is refused", "mysql://kg:" + dsnPassword + "@db.example.com/keygate", "", ""},
		{"a bad port is refused", "postgres://kg:" + dsnPassword + "@db.example.com:port/keygate", "", ""},
		{"a stray word is refused", "keygate", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PGHOST", "")
			t.Setenv("PGPORT", "")
			t.Setenv("PGDATABASE", "")
			db, err := parseDatabaseURL(tt.raw)
			if tt.dsn == "" {
				if err == nil || !isUsage(err) || strings.Contains(err.Error(), dsnPassword) {
					t.Fatalf("err = %v, want a usage error without the password", err)
				}
				return
			}
			if err != nil || db.dsn != tt.dsn || db.where != tt.where {
				t.Fatalf("got %q, %q, %v; want %q, %q", db.dsn, db.where, err, tt.dsn, tt.where)
			}
		})
	}
}
