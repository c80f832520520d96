package postgres

import (
	"context"
	"time"

	"github.com/keygate/keygate/storage"
)

// What the risk engine remembers: the devices each user signs in from, and
// the history of their successful sign-ins.

const deviceColumns = `id, user_id, user_agent, first_seen, last_seen, last_ip, last_country, sign_ins`

func scanDevice(sc rowScanner) (storage.Device, error) {
	var d storage.Device
	err := sc.Scan(&d.ID, &d.UserID, &d.UserAgent, tsCol{&d.FirstSeen}, tsCol{&d.LastSeen},
		&d.LastIP, &d.LastCountry, &d.SignIns)
	return d, err
}

// TouchDevice is one upsert: of concurrent sign-ins from one device, each
// counts and none is lost (the conflicting insert waits for the row and
// updates it as the last writer left it). A new row takes d's times, with
// LastSeen for a zero FirstSeen (storage.PrepareDevice), and counts one
// sign-in; d.SignIns is ignored. On an existing row FirstSeen stays and
// SignIns grows by one; LastSeen, LastIP, LastCountry and UserAgent only
// move forward: a touch older than the row's LastSeen is counted but does
// not roll the last sighting back. An unknown user is ErrNotFound,
// answered without an error in the database.
func (s *Store) TouchDevice(ctx context.Context, d storage.Device) error {
	const op = "touch device"
	d, err := storage.PrepareDevice(d)
	if err != nil {
		return wrapErr(op, err)
	}
	// The SET expressions all read the row as it was before the update.
	// A NULL (zero) time is before every other, as 0 is in SQLite.
	tag, err := s.q(ctx).Exec(ctx, `
		INSERT INTO device (user_id, id, user_agent, first_seen, last_seen, last_ip, last_country, sign_ins)
		SELECT $1, $2, $3, $4, $5, $6, $7, 1 WHERE `+userExists+`
		ON CONFLICT (user_id, id) DO UPDATE SET
			sign_ins     = device.sign_ins + 1,
			last_seen    = greatest(device.last_seen, excluded.last_seen),
			last_ip      = CASE WHEN `+movesForward+` THEN excluded.last_ip ELSE device.last_ip END,
			last_country = CASE WHEN `+movesForward+` THEN excluded.last_country ELSE device.last_country END,
			user_agent   = CASE WHEN `+movesForward+` THEN excluded.user_agent ELSE device.user_agent END`,
		d.UserID, d.ID, d.UserAgent, ts(d.FirstSeen), ts(d.LastSeen), d.LastIP, d.LastCountry)
	if err != nil || tag.RowsAffected() > 0 {
		return wrapErr(op, err)
	}
	return notFound(op)
}

// movesForward: a touch's LastSeen is at or after the device's.
const movesForward = `(device.last_seen IS NULL OR excluded.last_seen >= device.last_seen)`

func (s *Store) GetDevice(ctx context.Context, userID, id string) (storage.Device, error) {
	d, err := scanDevice(s.q(ctx).QueryRow(ctx,
		`SELECT `+deviceColumns+` FROM device WHERE user_id = $1 AND id = $2`, userID, id))
	return d, wrapErr("get device", err)
}

// ListUserDevices lists the user's devices, most recently seen first, and
// by id among those seen at the same time.
func (s *Store) ListUserDevices(ctx context.Context, userID string) ([]storage.Device, error) {
	const op = "list user devices"
	rows, err := s.q(ctx).Query(ctx,
		`SELECT `+deviceColumns+` FROM device WHERE user_id = $1 ORDER BY last_seen DESC NULLS LAST, id`, userID)
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

// RecordSignIn appends r and returns its id. r.ID is ignored: ids are
// assigned by the database (an identity column), never reused. An unknown
// user is ErrNotFound, answered without an error in the database.
func (s *Store) RecordSignIn(ctx context.Context, r storage.SignInRecord) (int64, error) {
	var id int64
	err := s.q(ctx).QueryRow(ctx, `
		INSERT INTO signin (user_id, time, ip, country, city, lat, lon, has_coords,
			device_id, client_id, acr, decision, reasons)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 WHERE `+userExists+`
		RETURNING id`,
		r.UserID, ts(r.Time), r.IP, r.Country, r.City, r.Lat, r.Lon, r.HasCoords,
		r.DeviceID, r.ClientID, r.ACR, r.Decision, list(r.Reasons)).Scan(&id)
	return id, wrapErr("record sign-in", err)
}

// RecentSignIns returns the user's sign-ins newest first, the later
// recorded first among those at the same time; see storage.PageLimit for
// the limit.
func (s *Store) RecentSignIns(ctx context.Context, userID string, limit int) ([]storage.SignInRecord, error) {
	const op = "recent sign-ins"
	limit = storage.PageLimit(limit, storage.RecentSignInsDefault, storage.RecentSignInsMax)
	rows, err := s.q(ctx).Query(ctx, `
		SELECT `+signInColumns+` FROM signin
		WHERE user_id = $1
		ORDER BY time DESC NULLS LAST, id DESC
		LIMIT $2`, userID, limit)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	defer rows.Close()
	var out []storage.SignInRecord
	for rows.Next() {
		var r storage.SignInRecord
		if err := rows.Scan(&r.ID, &r.UserID, tsCol{&r.Time}, &r.IP, &r.Country, &r.City,
			&r.Lat, &r.Lon, &r.HasCoords, &r.DeviceID, &r.ClientID, &r.ACR, &r.Decision,
			&r.Reasons); err != nil {
			return nil, wrapErr(op, err)
		}
		nilEmpty(&r.Reasons)
		out = append(out, r)
	}
	return out, wrapErr(op, rows.Err())
}

// SignInCountries lists the distinct non-empty countries of the user's
// sign-ins, sorted bytewise (they are ISO 3166-1 codes).
func (s *Store) SignInCountries(ctx context.Context, userID string) ([]string, error) {
	out, err := s.queryStrings(ctx, `
		SELECT DISTINCT country FROM signin
		WHERE user_id = $1 AND country <> ''
		ORDER BY country`, userID)
	return out, wrapErr("sign-in countries", err)
}

// TrimSignIns is the sign-in history's retention sweep (see
// storage.SignInRetention), for the periodic garbage collection next to
// the expiry sweeps (its signature is theirs), and returns how many
// sign-ins it deleted. Like the expiry sweeps it deletes in batches, each
// committing on its own outside a transaction.
func (s *Store) TrimSignIns(ctx context.Context, now time.Time) (int, error) {
	return s.trimSignIns(ctx, now.Add(-storage.SignInRetention), storage.SignInsKeptPerUser)
}

// signInOrder orders a user's sign-ins as RecentSignIns lists them,
// newest first, a sign-in without a time last.
const signInOrder = `coalesce(time, '-infinity')`

// trimSignIns deletes the sign-ins before before (none for the zero
// time), then those beyond each user's keep newest (keep >= 1), in the
// order RecentSignIns lists them.
func (s *Store) trimSignIns(ctx context.Context, before time.Time, keep int) (int, error) {
	const op = "trim sign-ins"
	keep = max(keep, 1)
	total, err := s.deleteBatched(ctx, op, "signin", signInOrder+` < $1`, ts(before))
	if err != nil {
		return total, err
	}
	users, err := s.queryStrings(ctx,
		`SELECT user_id FROM signin GROUP BY user_id HAVING count(*) > $1`, keep)
	if err != nil {
		return total, wrapErr(op, err)
	}
	for _, userID := range users {
		// Everything after the oldest sign-in to keep. Rows recorded
		// meanwhile are newer and only make the user keep more for now;
		// a user trimmed meanwhile has no such row, and nothing goes.
		n, err := s.deleteBatched(ctx, op, "signin", `user_id = $1 AND (`+signInOrder+`, id) < (
			SELECT `+signInOrder+`, id FROM signin WHERE user_id = $1
			ORDER BY `+signInOrder+` DESC, id DESC
			LIMIT 1 OFFSET $2)`, userID, keep-1)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (s *Store) ForgetDevice(ctx context.Context, userID, id string) error {
	tag, err := s.q(ctx).Exec(ctx, `DELETE FROM device WHERE user_id = $1 AND id = $2`, userID, id)
	return affected("forget device", tag, err)
}
