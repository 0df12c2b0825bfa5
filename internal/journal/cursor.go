package journal

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Cursor marks the last entry a reader has handed out. Within one seqnum ID
// (one journal: journald carries it over on rotation and shares it between
// the system and user files) the seqnum orders entries; across seqnum IDs (a
// journal that was deleted and started anew) the realtime stamp does. The
// zero Cursor is before every entry.
type Cursor struct {
	SeqnumID [16]byte
	Seqnum   uint64
	Realtime uint64 // microseconds since the epoch
}

// IsZero reports whether c is the zero Cursor.
func (c Cursor) IsZero() bool { return c == Cursor{} }

// Before reports whether e comes after the entry c points at.
func (c Cursor) Before(e *Entry) bool {
	if c.IsZero() {
		return true
	}
	if e.SeqnumID == c.SeqnumID {
		return e.Seqnum > c.Seqnum
	}
	return uint64(e.Realtime.UnixMicro()) > c.Realtime
}

// String returns c in the form "s=SEQNUMID;i=SEQNUM;t=REALTIME" (hex, as in
// journald's cursors), or "" for the zero Cursor.
func (c Cursor) String() string {
	if c.IsZero() {
		return ""
	}
	return fmt.Sprintf("s=%x;i=%x;t=%x", c.SeqnumID[:], c.Seqnum, c.Realtime)
}

// MarshalText implements encoding.TextMarshaler.
func (c Cursor) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *Cursor) UnmarshalText(b []byte) error {
	p, err := ParseCursor(string(b))
	if err != nil {
		return err
	}
	*c = p
	return nil
}

// ParseCursor parses the form String returns; "" is the zero Cursor. Other
// fields of a journald cursor (b=, m=, x=) are ignored.
func ParseCursor(s string) (Cursor, error) {
	var c Cursor
	if s == "" {
		return c, nil
	}
	var haveS, haveI bool
	for _, kv := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return Cursor{}, fmt.Errorf("journal cursor %q: %q is not key=value", s, kv)
		}
		var err error
		switch k {
		case "s":
			var id []byte
			if id, err = hex.DecodeString(v); err == nil && len(id) != 16 {
				err = fmt.Errorf("%d bytes, want 16", len(id))
			}
			copy(c.SeqnumID[:], id)
			haveS = true
		case "i":
			c.Seqnum, err = strconv.ParseUint(v, 16, 64)
			haveI = true
		case "t":
			c.Realtime, err = strconv.ParseUint(v, 16, 64)
		}
		if err != nil {
			return Cursor{}, fmt.Errorf("journal cursor %q: %s: %w", s, k, err)
		}
	}
	if !haveS || !haveI {
		return Cursor{}, fmt.Errorf("journal cursor %q: needs s= and i=", s)
	}
	return c, nil
}
