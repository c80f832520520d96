// Package notice tells people by email what happens to their account, and
// lets them act on a sign-in that was not theirs.
//
// Notices are queued (server/mail) in the transaction of the event they
// tell of, so a notice exists if and only if its event does:
//
//   - a sign-in the risk engine found new (a new device, a new country):
//     login calls Notifier.SignedIn in the transaction that records the
//     sign-in, with the engine's reasons, the place, the device and the
//     time;
//   - a change to how the account is signed in to or what it may do — a
//     security key or authenticator app added or removed, recovery codes
//     regenerated, a role granted: Notifier.Recorded is the audit
//     recorder's hook (audit.Recorder.Notify), so every path that records
//     such a change, console, command line or self-service, tells the user.
//   - every alerting audit event (the ones the alert webhooks carry), to
//     each administrator — a user with a console role, not suspended —
//     who asked for alert mail in the console (SetAlertMail, kept in
//     storage.Meta under "alert-mail:<user id>"), from the same hook.
//
// Every sign-in notice carries a "this wasn't me" link: a random token,
// stored hashed (storage.Link), bound to that sign-in's session and
// device, usable once for ReportLifetime. Following it shows a page that
// changes nothing; confirming it (a POST of the token, from keygate's own
// origin) ends that session and its tokens, forgets the device and raises
// the alerting signin.reported (manage.ReportSignIn). It never signs
// anybody in: whoever holds the link can only end a session of the
// account it was mailed for.
//
// Without a mail server nothing is queued and no link is made.
package notice
