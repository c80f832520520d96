// Package mfa owns second factors: verifying a TOTP code or a recovery code
// during sign-in (advancing the flow from second_factor to verified), and
// enrolling an authenticator app after an enrolment link.
//
// A TOTP code is accepted once: the matched time step is stored and any step
// at or below it is refused, atomically, so a code relayed by a phishing
// proxy after the user typed it is worthless. Seeds are sealed under the
// master key with the user id as associated data. Recovery codes are stored
// as keyed hashes and shown exactly once.
package mfa
