package natsbridge

import "context"

// SetTestHookBeforeAck sets the hook that runs before an ack, for the tests of package
// natsbridge_test; nil removes it.
func SetTestHookBeforeAck(h func(ctx context.Context)) { testHookBeforeAck = h }
