package main

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/storage"
)

// metaMasterKeyCheck names the meta row holding a value derived from the
// store's master key (HKDF, so it tells nothing of the key): a process
// given another key finds out when it opens the store, not when a sealed
// secret fails to open or every app's secret stops matching — behind a
// load balancer, on one replica in three.
const metaMasterKeyCheck = "master_key_check"

// checkMasterKey refuses a master key that is not the store's: another
// replica's KEYGATE_MASTER_KEY, or a master.key created just now for a
// store whose secrets were sealed before. A store without a check yet
// (new, or made before there was one) takes this key's once its signing
// keys open under it. A refused key created just now is removed, so the
// right one can take its place.
func checkMasterKey(ctx context.Context, store storage.Store, master *keys.Master, created bool, dataDir string) error {
	want := base64.RawStdEncoding.EncodeToString(master.Derive("master-key-check", 32))
	got, err := store.GetMeta(ctx, metaMasterKeyCheck)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		if err := fitsSecrets(ctx, store, master, created, dataDir); err != nil {
			return err
		}
		return store.SetMeta(ctx, metaMasterKeyCheck, want)
	case err != nil:
		return err
	case subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1:
		return nil
	case created:
		return refuseCreated(dataDir)
	}
	return notTheStoresKey(dataDir)
}

// fitsSecrets checks a master key against a store that has no check yet:
// one created just now fits only a store without signing keys or apps;
// another must open the active signing keys.
func fitsSecrets(ctx context.Context, store storage.Store, master *keys.Master, created bool, dataDir string) error {
	signing, err := store.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	apps, err := store.ListClients(ctx)
	if err != nil {
		return err
	}
	if created && (len(signing) > 0 || len(apps) > 0) {
		return refuseCreated(dataDir)
	}
	if _, err := keys.LoadSet(ctx, store, master, nowUTC(), 0); errors.Is(err, keys.ErrOpen) {
		return notTheStoresKey(dataDir)
	} else if err != nil {
		return err
	}
	return nil
}

// notTheStoresKey is the error of a master key the store's secrets were
// not sealed under.
func notTheStoresKey(dataDir string) error {
	from := filepath.Join(dataDir, keys.MasterKeyFile)
	if os.Getenv("KEYGATE_MASTER_KEY") != "" {
		from = "KEYGATE_MASTER_KEY"
	}
	return fmt.Errorf("the master key from %s is not this store's: its secrets were sealed under another, "+
		"and every keygate on one store needs the same key", from)
}

// refuseCreated removes a master key created just now and says which key
// the store needs instead.
func refuseCreated(dataDir string) error {
	path := filepath.Join(dataDir, keys.MasterKeyFile)
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove the master key just created at %s: %w", path, err)
	}
	return fmt.Errorf("no master key in %s, and the store's secrets were sealed under one: "+
		"set KEYGATE_MASTER_KEY to that key, or put its %s in the data directory", dataDir, keys.MasterKeyFile)
}
