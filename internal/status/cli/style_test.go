package cli

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestStyle(t *testing.T) {
	file, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	for _, tc := range []struct {
		color, noColor string
		w              io.Writer
		want           bool
	}{
		{"always", "1", &bytes.Buffer{}, true},
		{"never", "", &bytes.Buffer{}, false},
		{"auto", "", &bytes.Buffer{}, false},
		{"auto", "", file, false}, // a regular file is no terminal
		{"auto", "1", file, false},
	} {
		t.Setenv("NO_COLOR", tc.noColor)
		o := &options{color: tc.color}
		got, err := o.style(tc.w)
		if err != nil || got.Color != tc.want {
			t.Errorf("--color=%s NO_COLOR=%q on %T: colour %v (%v), want %v", tc.color, tc.noColor, tc.w, got.Color, err, tc.want)
		}
	}
	if _, err := (&options{color: "sometimes"}).style(&bytes.Buffer{}); err == nil {
		t.Error("--color=sometimes accepted")
	}
}
