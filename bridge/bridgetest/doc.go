// Package bridgetest is a conformance kit for bridges that carry a bus's events across a
// broker (NATS JetStream, RabbitMQ, Kafka, or one of your own), in the manner of
// testing/slogtest: a bridge's own test calls [Run] with a function that sets up a broker
// and says how to connect the bridge to it, and the kit checks, in subtests, what every
// bridge of this project promises:
//
//   - RoundTrip: the envelope crosses intact (ID, time, key, source, Metadata of every
//     shape that is valid in process) with payloads of several types.
//   - KeyOrder: two buses receiving as one group share the work, every event is handled
//     once, and each key's events in the order they were published.
//   - BrokerRestart: with the broker restarted while events flow, nothing that Publish
//     accepted is lost (each event is received or dead-lettered on the publishing bus) and
//     each key stays in order.
//   - ConsumerCrash: a receiving bridge that dies mid-batch (its connection cut, nothing
//     settled) loses nothing: the other bridge of its group gets the rest, in order.
//   - Poison: an event whose handler fails on every attempt, and one whose handler returns
//     a Permanent error, are dead-lettered on the broker with their reason, while the other
//     keys flow.
//   - BadInput: bytes that are not an event of a received topic are dead-lettered as
//     invalid and never reach a handler.
//   - Close: a bridge's Close returns within its ctx (plus a second of slack), and every
//     event the forwarding bus accepted is forwarded or dead-lettered on that bus.
//
// After the subtests, Run checks that no goroutine they started is left.
//
// # Running it against a bridge of your own
//
// Write a function that, for one subtest, starts (or reserves a namespace on) a broker,
// registers its cleanup with t.Cleanup, and returns a [Harness]: how to connect a bridge
// that forwards the kit's topics ([Steps], [Blobs], [Notes]) and one that receives them,
// and, optionally, how to restart the broker, crash a receiving bridge, publish raw bytes
// and read the broker's dead letters. Subtests whose optional parts are missing skip,
// saying which. Then:
//
//	func TestConformance(t *testing.T) {
//		bridgetest.Run(t, func(t *testing.T) bridgetest.Harness {
//			broker := startBroker(t)
//			return bridgetest.Harness{
//				Forward: func(ctx context.Context, b *eventbus.Bus) (bridgetest.Bridge, error) {
//					return mybridge.Connect(ctx, b, broker.config(), mybridge.Forward(bridgetest.Steps),
//						mybridge.Forward(bridgetest.Blobs), mybridge.Forward(bridgetest.Notes))
//				},
//				Receive: ...,
//			}
//		})
//	}
//
// Configure the bridges for a test: retries, redeliveries and acknowledgement deadlines
// of a second or less, so that a subtest takes seconds. The kit needs nothing but the
// standard library and the eventbus module; bridge/nats's conformance_test.go is a
// complete example.
package bridgetest
