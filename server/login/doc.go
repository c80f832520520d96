// Package login runs the sign-in flow as a small state machine over a flow
// record in storage (storage.Flow):
//
//	identify (email + password)  -> second_factor   [this package]
//	second_factor (TOTP, recovery code, later keys) -> verified   [server/mfa]
//	verified -> complete: the browser session is signed in   [this package]
//	complete -> the authorize request resumes   [server/oidc]
//
// Each step checks the state it may act on and advances it in a
// transaction; the dispatcher (/login/continue) sends the browser wherever
// the state says. Packages share the record, never Go imports, so a new
// factor or a step-up is a new state and a new route, not a rewrite. Two
// hand-overs are in-process, wired by the server as functions: the
// authorize endpoint runs the dispatcher on a flow that starts from the
// browser's sign-in (Handler.Continue), and the dispatcher answers a
// completed flow with the app's code (Deps.HandBack) — no redirect each.
//
// The user's groups take part once the user is known (access.go): a
// group's minimum acr raises the flow's requirement before the second
// factor is asked for, and a user outside the app's allowed groups is
// shown a page instead of being handed back (server/oidc refuses again,
// in the transaction that would write the code).
//
// It also owns enrolment links (set a password, then hand over to
// server/mfa for the first factor, which completes the enrolment), the
// "forgot password" links (forgot.go: a new password waits in a flow for
// the second factor, and takes effect only when the dispatcher finds that
// flow verified; nobody is signed in), and the basic account page. A
// completed sign-in that looks new is told to its user (Deps.Notices).
package login
