// Package sdkcheck holds only tests: they check the JSON and the binary-mode headers that
// package cloudevents writes against github.com/cloudevents/sdk-go/v2, the reference Go
// SDK, which parses them and validates the result. It is a module of its own so that the
// core module stays free of that dependency.
package sdkcheck
