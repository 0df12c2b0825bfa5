package draino

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// flagKind says how a Draino flag takes its value.
type flagKind int

const (
	// boolFlag: --x, --x=true|false (pflag, Draino's DataDog fork), --no-x
	// (kingpin, upstream Draino).
	boolFlag flagKind = iota
	// valueFlag: --x=v or --x v, given once (the last one wins, with a warning).
	valueFlag
	// listFlag: --x=v or --x v, repeatable; every value is kept.
	listFlag
	// csvListFlag is a listFlag whose values are also split on commas, as
	// the fork's pflag StringSlice flags did (harmless for these flags: none
	// of their values can contain a comma).
	csvListFlag
)

// cmdline is a parsed Draino command line.
type cmdline struct {
	values     map[string][]string // flag name -> values in command-line order; bools are "true"/"false"
	positional []string
	warnings   []string
}

func (c *cmdline) has(name string) bool { return len(c.values[name]) > 0 }

// last returns the flag's last value ("" when absent).
func (c *cmdline) last(name string) string {
	v := c.values[name]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// boolean returns the flag's value, or def when it was not given.
func (c *cmdline) boolean(name string, def bool) bool {
	if !c.has(name) {
		return def
	}
	return c.last(name) == "true"
}

// parseCmdline parses args the way Draino did: kingpin syntax (upstream) and
// pflag syntax (the fork) both, flags and positional node conditions in any
// order, "--" ending the flags. A leading program name (".../draino", as in a
// container's command) is skipped, so a manifest's command can be pasted as
// is. An unknown flag is an error.
func parseCmdline(args []string) (*cmdline, error) {
	c := &cmdline{values: map[string][]string{}}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") && filepath.Base(args[0]) == "draino" {
		args = args[1:]
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			c.positional = append(c.positional, args[i+1:]...)
			c.finish()
			return c, nil
		case a == "-d":
			c.values["debug"] = append(c.values["debug"], "true")
			continue
		case !strings.HasPrefix(a, "--"):
			if strings.HasPrefix(a, "-") && len(a) > 1 {
				return nil, fmt.Errorf("unknown flag %s: Draino's only short flag is -d (--debug)", a)
			}
			c.positional = append(c.positional, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		def, known := flagTable[name]
		negated := false
		if !known {
			if base, ok := strings.CutPrefix(name, "no-"); ok {
				if d, ok := flagTable[base]; ok && d.kind == boolFlag {
					def, known, negated, name = d, true, true, base
				}
			}
		}
		if !known {
			return nil, fmt.Errorf("unknown flag --%s: not a Draino flag (see docs/migrate-draino.md for the flags convert knows)", name)
		}
		switch def.kind {
		case boolFlag:
			v := "true"
			if hasValue {
				if negated {
					return nil, fmt.Errorf("--no-%s takes no value", name)
				}
				b, err := strconv.ParseBool(value)
				if err != nil {
					return nil, fmt.Errorf("--%s: %q is not a boolean (true or false)", name, value)
				}
				v = strconv.FormatBool(b)
			} else if negated {
				v = "false"
			}
			c.values[name] = append(c.values[name], v)
		default:
			if !hasValue {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("--%s needs a value", name)
				}
				i++
				value = args[i]
			}
			if def.kind == csvListFlag {
				c.values[name] = append(c.values[name], strings.Split(value, ",")...)
			} else {
				c.values[name] = append(c.values[name], value)
			}
		}
	}
	c.finish()
	return c, nil
}

// finish reports single-valued flags given more than once.
func (c *cmdline) finish() {
	for _, def := range flags {
		name := def.name
		if def.kind == valueFlag && len(c.values[name]) > 1 {
			c.warnings = append(c.warnings, fmt.Sprintf("--%s: given %d times; the last value (%q) is used", name, len(c.values[name]), c.last(name)))
		}
	}
}
