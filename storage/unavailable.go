package storage

// ErrUnavailable: the database cannot be reached just now (a server that
// is down, restarting or cut off). It is no answer about the data: a
// retry in a moment may succeed. Its Unavailable method lets the HTTP
// layer, which knows nothing of storage, answer 503 rather than 500.
var ErrUnavailable error = unavailableError{}

type unavailableError struct{}

func (unavailableError) Error() string     { return "storage: the database is unavailable" }
func (unavailableError) Unavailable() bool { return true }
