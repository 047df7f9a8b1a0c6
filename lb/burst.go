package lb

import (
	"log/slog"
	"time"
)

// burstReminder is how often a failure that keeps repeating is logged
// again, with its count.
const burstReminder = 5 * time.Minute

// burst logs a repeated error once per burst: the first occurrence, a
// reminder with the count every burstReminder while it repeats, and a
// summary when it ends (another error, or success).
type burst struct {
	msg        string
	count      int
	first      time.Time
	lastLogged time.Time
}

// fail records one failure; attrs are logged with it.
func (b *burst) fail(log *slog.Logger, what string, err error, now time.Time, attrs ...any) {
	msg := err.Error()
	if b.count > 0 && msg == b.msg {
		b.count++
		if now.Sub(b.lastLogged) >= burstReminder {
			log.Error(what+" still failing", append(attrs, "error", err, "failures", b.count, "since", b.first)...)
			b.lastLogged = now
		}
		return
	}
	b.end(log, what, now)
	log.Error(what+" failed", append(attrs, "error", err)...)
	*b = burst{msg: msg, count: 1, first: now, lastLogged: now}
}

// succeed ends a burst, if any, with a summary line.
func (b *burst) succeed(log *slog.Logger, what string, now time.Time) {
	if b.count > 0 {
		log.Info(what+" recovered", "failures", b.count, "after", now.Sub(b.first).Round(time.Millisecond))
	}
	*b = burst{}
}

// end logs how often the current error repeated after it was logged.
func (b *burst) end(log *slog.Logger, what string, now time.Time) {
	if b.count > 1 {
		log.Warn(what+": the previous error repeated", "error", b.msg, "failures", b.count,
			"over", now.Sub(b.first).Round(time.Millisecond))
	}
}
