// Package mail is how keygate reaches people by email: the messages it
// sends (built from the templates in web/mail, plain text and simple HTML,
// with no remote images and links only to the issuer), the outbox queue
// they wait in, and their delivery over SMTP.
//
// A message is queued by Queue.Enqueue in the transaction of the event that
// causes it (a user created, a new enrolment link), as an outbox message of
// kind OutboxKind; if that transaction rolls back, no mail goes out. After
// commit the server's outbox deliverer (server/audit) hands it to
// Sender.Send, which retries with backoff while the mail server is down, and
// across restarts, because the outbox is in the database. A request never
// waits for SMTP.
//
// A message may carry a link that lets whoever holds it set up an account,
// so it is stored only sealed under the master key and bound to its
// recipient: the database, or a backup of it, does not give the link away.
//
// What reaches a header is never raw user input: the recipient's address is
// one keygate accepted as an address (a CR or LF never is one), and names
// and subjects are made one line and then encoded by the mail library.
//
// This package does no HTTP and writes nothing but the outbox message.
package mail
