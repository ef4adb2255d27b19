package natsbridge

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
)

// dial opens the bridge's connection with cfg.Options over the bridge's defaults, as
// Config.Options documents: reconnect forever unless an option says otherwise, and no
// reconnect buffer whatever the options say (buffered, a forward would be sent on
// reconnect even after its retries ran out and the bus dead-lettered it: stored and
// dead-lettered both). The user's ClosedHandler is kept and followed by the bridge's,
// which closes br.connClosed. ctx bounds the dial and the handshake with the server, but
// not the reconnections that come later.
func (br *Bridge) dial(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("natsbridge: connect to %s: %w", br.cfg.URL, err)
	}
	o := nats.GetDefaultOptions()
	o.Servers = serverURLs(br.cfg.URL)
	o.MaxReconnect = -1
	for _, opt := range br.cfg.Options {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return fmt.Errorf("natsbridge: Options: %w", err)
		}
	}
	o.ReconnectBufSize = -1
	br.connClosed = make(chan struct{})
	br.closedCallback = !o.NoCallbacksAfterClientClose
	users := o.ClosedCB
	o.ClosedCB = func(nc *nats.Conn) {
		if users != nil {
			users(nc)
		}
		close(br.connClosed)
	}
	d := &ctxDialer{ctx: ctx, inner: innerDialer(&o)}
	o.CustomDialer = d
	nc, err := o.Connect()
	d.release()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("natsbridge: connect to %s: %w: %w", br.cfg.URL, ctx.Err(), err)
		}
		return fmt.Errorf("natsbridge: connect to %s: %w", br.cfg.URL, err)
	}
	br.nc = nc
	return nil
}

// serverURLs splits a comma-separated list of URLs, as nats.Connect does.
func serverURLs(list string) []string {
	var urls []string
	for u := range strings.SplitSeq(list, ",") {
		if u = strings.TrimSuffix(strings.TrimSpace(u), "/"); u != "" {
			urls = append(urls, u)
		}
	}
	return urls
}

// innerDialer returns the dialer nats.go would use with o: its CustomDialer, its Dialer,
// or a net.Dialer with its Timeout.
func innerDialer(o *nats.Options) nats.CustomDialer {
	switch {
	case o.CustomDialer != nil:
		return o.CustomDialer
	case o.Dialer != nil:
		return o.Dialer
	}
	return &net.Dialer{Timeout: o.Timeout}
}

// ctxDialer dials with inner. Until release is called, ctx bounds each connection it
// makes: the dial (if inner can take a ctx) and then everything until release, since the
// connection is closed when ctx ends, which ends nats.go's handshake at once. Connections
// made after release (reconnections) are not bound.
type ctxDialer struct {
	inner nats.CustomDialer

	mu    sync.Mutex
	ctx   context.Context // nil once released
	stops []func() bool   // of the context.AfterFunc closing each connection
}

// Dial implements nats.CustomDialer.
func (d *ctxDialer) Dial(network, address string) (net.Conn, error) {
	d.mu.Lock()
	ctx := d.ctx
	d.mu.Unlock()
	if ctx == nil {
		return d.inner.Dial(network, address)
	}
	var c net.Conn
	var err error
	if cd, ok := d.inner.(interface {
		DialContext(ctx context.Context, network, address string) (net.Conn, error)
	}); ok {
		c, err = cd.DialContext(ctx, network, address)
	} else {
		c, err = d.inner.Dial(network, address)
	}
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx != nil { // not released meanwhile
		d.stops = append(d.stops, context.AfterFunc(d.ctx, func() { c.Close() }))
	}
	return c, nil
}

// SkipTLSHandshake passes on the inner dialer's choice, which nats.go asks a
// CustomDialer for.
func (d *ctxDialer) SkipTLSHandshake() bool {
	s, ok := d.inner.(interface{ SkipTLSHandshake() bool })
	return ok && s.SkipTLSHandshake()
}

// release stops binding connections to ctx, those made so far included.
func (d *ctxDialer) release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ctx = nil
	for _, stop := range d.stops {
		stop()
	}
	d.stops = nil
}

// closeConn flushes the connection, so that the acks sent so far reach the server, and
// closes it, then waits for the ClosedHandler. The flush is skipped while the connection
// is down (nothing could reach the server), and waits at most PublishTimeout, or until
// ctx ends. (It does not use nats.go's Drain: Drain's wait is bounded only by its
// DrainTimeout, 30s by default, and its goroutine outlives a Close made meanwhile; the
// bridge has stopped its subscriptions by now anyway.)
func (br *Bridge) closeConn(ctx context.Context) {
	if ctx.Err() == nil && br.nc.IsConnected() {
		ctx, cancel := context.WithTimeout(ctx, br.cfg.PublishTimeout)
		br.nc.FlushWithContext(ctx) // best effort: if it fails, the server redelivers after AckWait
		cancel()
	}
	br.nc.Close()
	if br.closedCallback {
		<-br.connClosed
	}
}
