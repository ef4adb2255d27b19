package eventbusotel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/ae30fb47/eventbus"
)

func TestErrorType(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&eventbus.PanicError{Value: "boom"}, "panic"},
		{&eventbus.PanicError{Value: context.Canceled}, "panic"},
		{fmt.Errorf("attempt: %w", eventbus.ErrHandlerTimeout), "timeout"},
		{eventbus.Permanent(errors.New("bad order")), "permanent"},
		{fmt.Errorf("wrapped: %w", eventbus.Permanent(context.Canceled)), "permanent"},
		{fmt.Errorf("publish: %w", eventbus.ErrClosed), "closed"},
		{context.Canceled, "canceled"},
		{fmt.Errorf("waiting: %w", context.DeadlineExceeded), "deadline_exceeded"},
		{errors.New("card declined"), "*errors.errorString"},
		{&fs.PathError{Op: "open", Path: "x", Err: fs.ErrNotExist}, "*fs.PathError"},
	}
	for _, tt := range tests {
		if got := errorType(tt.err); got != tt.want {
			t.Errorf("errorType(%v) = %q; want %q", tt.err, got, tt.want)
		}
	}
}
