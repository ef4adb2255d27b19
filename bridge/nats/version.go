package natsbridge

import (
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// The bridge supports nats-server 2.9 and later. What differs by version:
//
//   - A term with a reason (+TERM reason) needs 2.10.4: older servers ignore it, and
//     redeliver the message after AckWait, for ever. The bridge terms without a reason
//     there (the reason is in the dead letter's headers anyway).
//   - A consumer with several filter subjects needs 2.10: receiving several topics on an
//     older server fails at Connect, naming the version.
//   - Before 2.10, a pull request outlives the connection that made it until it expires,
//     and the server delivers into it meanwhile: a message it delivers there waits out
//     AckWait. The bridge pulls with short requests and, when it closes, waits for its last
//     ones to end (see Bridge.Close).

// version is a server version, as major, minor and patch.
type version [3]int

// parseVersion parses "2.9.10" (and "2.11.0-RC.1", ignoring what follows a '-'); a part
// that does not parse counts as 0.
func parseVersion(s string) version {
	s, _, _ = strings.Cut(s, "-")
	var v version
	for i, part := range strings.SplitN(s, ".", 3) {
		v[i], _ = strconv.Atoi(part)
	}
	return v
}

// atLeast reports whether v is min or later.
func (v version) atLeast(min version) bool {
	for i := range v {
		if v[i] != min[i] {
			return v[i] > min[i]
		}
	}
	return true
}

var (
	termReasonSince     = version{2, 10, 4}
	filterSubjectsSince = version{2, 10, 0}
)

// serverVersion returns the version of the server the bridge is connected to now (it may
// change with a reconnection to another server of a cluster).
func (br *Bridge) serverVersion() version { return parseVersion(br.nc.ConnectedServerVersion()) }

// term terminates msg, with reason where the server records it.
func (br *Bridge) term(msg jetstream.Msg, reason string) error {
	if br.serverVersion().atLeast(termReasonSince) {
		return msg.TermWithReason(reason)
	}
	return msg.Term()
}
