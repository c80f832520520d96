// Package audit is the vocabulary of keygate's audit log and the Recorder
// that writes it. Events are written in the same transaction as the change
// they describe (the context carries it), so a change without its record
// cannot exist; alerting events also queue one outbox message per webhook in
// that transaction, which the server's delivery worker sends, signed, with
// retries — none is lost across a restart.
package audit
