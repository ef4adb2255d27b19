package natsbridge

import "testing"

func TestParseVersion(t *testing.T) {
	for s, want := range map[string]version{
		"2.9.10": {2, 9, 10}, "2.10.4": {2, 10, 4}, "2.11.0-RC.1": {2, 11, 0}, "2.12": {2, 12, 0}, "": {0, 0, 0},
	} {
		if got := parseVersion(s); got != want {
			t.Errorf("parseVersion(%q) = %v; want %v", s, got, want)
		}
	}
	for _, tt := range []struct {
		v, min version
		want   bool
	}{
		{version{2, 9, 10}, termReasonSince, false},
		{version{2, 10, 3}, termReasonSince, false},
		{version{2, 10, 4}, termReasonSince, true},
		{version{2, 11, 0}, termReasonSince, true},
		{version{3, 0, 0}, termReasonSince, true},
		{version{2, 9, 99}, filterSubjectsSince, false},
	} {
		if got := tt.v.atLeast(tt.min); got != tt.want {
			t.Errorf("%v.atLeast(%v) = %v; want %v", tt.v, tt.min, got, tt.want)
		}
	}
}
