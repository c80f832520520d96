// Package risk decides, for one sign-in, whether the existing authentication
// suffices, must be repeated at a stronger level, or must be refused.
//
// # What it owns
//
// The package owns the judgement only: which signals count (a session used
// from another device, impossible travel, a new country or device, failure
// runs, a dormant account waking up, an unusual hour, a trusted network),
// how much each weighs (the Weight constants), the thresholds (Policy,
// DefaultPolicy), and the plain-words explanation of every signal. It does
// not gather signals: the caller looks up the place of the IP address, the
// device cookie, the session and the user's history, puts them in Signals
// and calls Decide. It does not act on the answer either: the login flow
// steps up or refuses, the audit log records the decision (with the IP
// address, which the reason texts never contain).
//
// # Pure
//
// Decide is a pure function of its arguments: no I/O, no clock (the time is
// Signals.Now), no randomness, no global state. The same Signals and Policy
// give the same Decision, reasons in the same order, so it is tested by
// table and safe to call from any goroutine. It imports only the standard
// library.
//
// # Reading a Decision
//
//   - Outcome is what to do: Allow, StepUp (authenticate again now, at
//     least at ACR, "phr" by default: a phishing-resistant method), or Deny
//     (refuse and alert).
//   - Score is the sum of the reasons' weights (never below zero). Deny at
//     Policy.DenyScore, StepUp at Policy.StepUpScore. Some signals are
//     decisive and force an outcome whatever the score: impossible travel
//     denies (or steps up, when Policy.DenyImpossibleTravel is false); a
//     session from another device and failure runs step up.
//   - Reasons lists every signal that counted, most serious first, in a
//     fixed order (impossible_travel, session_other_device, failures_user,
//     failures_ip, new_country, new_device, dormant_account, unusual_hour,
//     trusted_network). Code is stable, for logs, metrics and tests; Text is
//     for people: the step-up page shows Texts() to the user ("new country:
//     DE", "impossible travel: 8,400 km in 2 h"), the admin console shows
//     them beside the audit event.
//   - trusted_network has a negative weight: the office vouches for the
//     soft signals (new device, new country, dormant, unusual hour), so a
//     new laptop at the office is allowed, its new_device reason still
//     listed. It never offsets a decisive signal, and its Weight is what it
//     actually subtracted (0 when there was nothing to offset).
package risk
