package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCreatedTime(t *testing.T) {
	want := time.Date(2026, 12, 5, 17, 12, 55, 0, time.UTC)
	for _, c := range []struct{ flag, env string }{
		{"1796490775", ""},
		{"2026-12-05T18:12:55+01:00", "0"}, // the flag wins over SOURCE_DATE_EPOCH
		{"", "1796490775"},
	} {
		got, err := createdTime(t.TempDir(), c.flag, c.env)
		if err != nil || !got.Equal(want) {
			t.Errorf("createdTime(%q, %q) = %s, %v; want %s", c.flag, c.env, got, err, want)
		}
	}
	if _, err := createdTime(t.TempDir(), "yesterday", ""); err == nil {
		t.Error("no error for -created yesterday")
	}
	// Not a git checkout, nothing set: 1970.
	got, err := createdTime(t.TempDir(), "", "")
	if err != nil || !got.Equal(time.Unix(0, 0)) {
		t.Errorf("outside git: %s, %v", got, err)
	}
}

func TestPrepareOutReplacesOnlyItsOwnFiles(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"oci/index.json", archiveName, "sbom-linux-amd64.spdx.json"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := prepareOut(dir); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left %v", entries)
	}
	if err := os.WriteFile(filepath.Join(dir, "precious.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := prepareOut(dir); err == nil {
		t.Error("no error for a directory with a file the command did not write")
	}
	if _, err := os.Stat(filepath.Join(dir, "precious.txt")); err != nil {
		t.Error("removed a file it did not write")
	}
	if err := prepareOut(filepath.Join(dir, "new", "out")); err != nil {
		t.Errorf("a new directory: %v", err)
	}
}
