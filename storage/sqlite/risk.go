package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/keygate/keygate/storage"
)

// What the risk engine remembers: the devices each user signs in from, and
// the history of their successful sign-ins.

const deviceColumns = `id, user_id, user_agent, first_seen, last_seen, last_ip, last_country, sign_ins`

func scanDevice(sc rowScanner) (storage.Device, error) {
	var d storage.Device
	err := sc.Scan(&d.ID, &d.UserID, &d.UserAgent, timeCol{&d.FirstSeen}, timeCol{&d.LastSeen},
		&d.LastIP, &d.LastCountry, &d.SignIns)
	return d, err
}

// TouchDevice is one upsert, so concurrent sign-ins from one device each
// count and neither is lost. A new row takes d's times, with LastSeen for
// a zero FirstSeen (storage.PrepareDevice), and counts one sign-in;
// d.SignIns is ignored. On an existing row FirstSeen stays and SignIns
// grows by one; LastSeen, LastIP, LastCountry and UserAgent only move
// forward: a touch older than the row's LastSeen (a sign-in that committed
// late) is counted but does not roll the last sighting back. An unknown
// user is ErrNotFound.
func (s *Store) TouchDevice(ctx context.Context, d storage.Device) error {
	const op = "touch device"
	d, err := storage.PrepareDevice(d)
	if err != nil {
		return wrapErr(op, err)
	}
	// The SET expressions all read the row as it was before the update,
	// so the order of the assignments does not matter.
	_, err = s.w(ctx).ExecContext(ctx, `
		INSERT INTO device (`+deviceColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, 1)
		ON CONFLICT (user_id, id) DO UPDATE SET
			sign_ins     = sign_ins + 1,
			last_seen    = max(last_seen, excluded.last_seen),
			last_ip      = CASE WHEN excluded.last_seen >= last_seen THEN excluded.last_ip ELSE last_ip END,
			last_country = CASE WHEN excluded.last_seen >= last_seen THEN excluded.last_country ELSE last_country END,
			user_agent   = CASE WHEN excluded.last_seen >= last_seen THEN excluded.user_agent ELSE user_agent END`,
		d.ID, d.UserID, d.UserAgent, micros(d.FirstSeen), micros(d.LastSeen), d.LastIP, d.LastCountry)
	return wrapErr(op, err)
}

func (s *Store) GetDevice(ctx context.Context, userID, id string) (storage.Device, error) {
	d, err := scanDevice(s.r(ctx).QueryRowContext(ctx,
		`SELECT `+deviceColumns+` FROM device WHERE user_id = ? AND id = ?`, userID, id))
	return d, wrapErr("get device", err)
}

// ListUserDevices lists the user's devices, most recently seen first, and
// by id among those seen at the same time.
func (s *Store) ListUserDevices(ctx context.Context, userID string) ([]storage.Device, error) {
	const op = "list user devices"
	rows, err := s.r(ctx).QueryContext(ctx,
		`SELECT `+deviceColumns+` FROM device WHERE user_id = ? ORDER BY last_seen DESC, id`, userID)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	defer rows.Close()
	var out []storage.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, wrapErr(op, err)
		}
		out = append(out, d)
	}
	return out, wrapErr(op, rows.Err())
}

const signInColumns = `id, user_id, time, ip, country, city, lat, lon, has_coords,
	device_id, client_id, acr, decision, reasons`

// RecordSignIn appends s and returns its id. s.ID is ignored: ids are
// assigned by the database, never reused, and increase with every record.
// An unknown user is ErrNotFound.
func (s *Store) RecordSignIn(ctx context.Context, r storage.SignInRecord) (int64, error) {
	var id int64
	err := s.writeRow(ctx, `
		INSERT INTO signin (user_id, time, ip, country, city, lat, lon, has_coords,
			device_id, client_id, acr, decision, reasons)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`,
		[]any{r.UserID, micros(r.Time), r.IP, r.Country, r.City, r.Lat, r.Lon, r.HasCoords,
			r.DeviceID, r.ClientID, r.ACR, r.Decision, listJSON(r.Reasons)}, &id)
	return id, wrapErr("record sign-in", err)
}

// RecentSignIns returns the user's sign-ins newest first, the later
// recorded first among those at the same time. A limit <= 0 means 20, and
// no call returns more than 500.
func (s *Store) RecentSignIns(ctx context.Context, userID string, limit int) ([]storage.SignInRecord, error) {
	const op = "recent sign-ins"
	limit = storage.PageLimit(limit, storage.RecentSignInsDefault, storage.RecentSignInsMax)
	// Walks signin_user_id_time backwards: no sort.
	rows, err := s.r(ctx).QueryContext(ctx, `
		SELECT `+signInColumns+` FROM signin
		WHERE user_id = ?
		ORDER BY time DESC, id DESC
		LIMIT ?`, userID, limit)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	defer rows.Close()
	var out []storage.SignInRecord
	for rows.Next() {
		var r storage.SignInRecord
		if err := rows.Scan(&r.ID, &r.UserID, timeCol{&r.Time}, &r.IP, &r.Country, &r.City,
			&r.Lat, &r.Lon, &r.HasCoords, &r.DeviceID, &r.ClientID, &r.ACR, &r.Decision,
			listCol{&r.Reasons}); err != nil {
			return nil, wrapErr(op, err)
		}
		out = append(out, r)
	}
	return out, wrapErr(op, rows.Err())
}

// SignInCountries lists the distinct non-empty countries of the user's
// sign-ins, sorted bytewise (they are ISO 3166-1 codes).
func (s *Store) SignInCountries(ctx context.Context, userID string) ([]string, error) {
	const op = "sign-in countries"
	rows, err := s.r(ctx).QueryContext(ctx, `
		SELECT DISTINCT country FROM signin
		WHERE user_id = ? AND country <> ''
		ORDER BY country`, userID)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	return scanStrings(op, rows)
}

// scanStrings reads a single-column result of strings.
func scanStrings(op string, rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, wrapErr(op, err)
		}
		out = append(out, v)
	}
	return out, wrapErr(op, rows.Err())
}

// TrimSignIns is the sign-in history's retention sweep (see
// storage.SignInRetention), for the periodic garbage collection next to
// the expiry sweeps (its signature is theirs), and returns how many
// sign-ins it deleted. Like the expiry sweeps it deletes in batches, each
// committing on its own outside a transaction; the counting that finds
// the users over the cap runs on the reader pool, not under the write lock.
func (s *Store) TrimSignIns(ctx context.Context, now time.Time) (int, error) {
	return s.trimSignIns(ctx, now.Add(-storage.SignInRetention), storage.SignInsKeptPerUser)
}

// trimSignIns deletes the sign-ins before before, then those beyond each
// user's keep newest (keep >= 1), in the order RecentSignIns lists them.
func (s *Store) trimSignIns(ctx context.Context, before time.Time, keep int) (int, error) {
	const op = "trim sign-ins"
	keep = max(keep, 1)
	total, err := s.deleteBatched(ctx, op, "signin", "time < ?", micros(before))
	if err != nil {
		return total, err
	}
	// Collected before deleting: inside a transaction the reads and the
	// deletes share its one connection.
	rows, err := s.r(ctx).QueryContext(ctx,
		`SELECT user_id FROM signin GROUP BY user_id HAVING count(*) > ?`, keep)
	if err != nil {
		return total, wrapErr(op, err)
	}
	users, err := scanStrings(op, rows)
	if err != nil {
		return total, err
	}
	for _, userID := range users {
		// The oldest sign-in to keep. Rows recorded meanwhile are newer
		// and only make the user keep more for now.
		var cutTime, cutID int64
		err := s.r(ctx).QueryRowContext(ctx, `
			SELECT time, id FROM signin
			WHERE user_id = ?
			ORDER BY time DESC, id DESC
			LIMIT 1 OFFSET ?`, userID, keep-1).Scan(&cutTime, &cutID)
		if isNoRows(err) {
			continue // trimmed meanwhile: the user was deleted, say
		}
		if err != nil {
			return total, wrapErr(op, err)
		}
		n, err := s.deleteBatched(ctx, op, "signin",
			"user_id = ? AND (time, id) < (?, ?)", userID, cutTime, cutID)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (s *Store) ForgetDevice(ctx context.Context, userID, id string) error {
	res, err := s.w(ctx).ExecContext(ctx, `DELETE FROM device WHERE user_id = ? AND id = ?`, userID, id)
	return affected("forget device", res, err)
}
