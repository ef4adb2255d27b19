package eventbus

import (
	"encoding/json"
	"net/http"
	"path"
)

// HTTPHandler returns an http.Handler that shows b's [Stats] and [Health] as JSON, in the
// manner of expvar and net/http/pprof: mount it where an operator or a probe looks, such
// as mux.Handle("/eventbus/", http.StripPrefix("/eventbus", eventbus.HTTPHandler(bus))).
// By the last element of the request's path:
//
//   - stats: the Stats, 200.
//   - health: the Health, 200 if the bus is open and every subscription healthy, 503
//     otherwise.
//   - ready: a readiness probe: "ok" and 200, or the reason (Health.Err) and 503.
//   - anything else (the mount point itself): {"health": ..., "stats": ...}, with the status
//     of health.
//
// Only GET and HEAD are served (405 otherwise). Responses are not cached. The handler takes
// a snapshot per request, locking each subscription briefly; it is safe for concurrent use.
func HTTPHandler(b *Bus) http.Handler {
	if b == nil {
		panic("eventbus: HTTPHandler: nil Bus")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		switch path.Base(r.URL.Path) {
		case "stats":
			writeJSON(w, http.StatusOK, b.Stats())
		case "health":
			h := b.Health()
			writeJSON(w, statusOf(h), h)
		case "ready":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			if err := b.Ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(err.Error() + "\n"))
				return
			}
			w.Write([]byte("ok\n"))
		default:
			h := b.Health()
			writeJSON(w, statusOf(h), struct {
				Health Health `json:"health"`
				Stats  Stats  `json:"stats"`
			}{h, b.Stats()})
		}
	})
}

// statusOf returns 200 for a healthy bus, 503 otherwise.
func statusOf(h Health) int {
	if h.Err() != nil {
		return http.StatusServiceUnavailable
	}
	return http.StatusOK
}

// writeJSON writes v as indented JSON with the status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "eventbus: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(body, '\n'))
}
