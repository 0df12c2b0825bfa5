// Package agentconfig reads the agent's configuration file, an AgentConfig
// (api/v1alpha1), and watches it for changes.
//
// Reading is strict: the file must say apiVersion nodewarden.io/v1alpha1 and
// kind AgentConfig, an unknown or repeated field is an error (a misspelt
// field silently ignored would leave a default in force that the author
// believes changed), and the result is defaulted and then validated. Every
// error starts with "config <path>: " and names the offending field, e.g.
//
//	config /etc/nodewarden/agent.yaml: hostEventLog.maxLineBytes: Invalid value: 10: must be at least 1024
package agentconfig

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// maxFileBytes bounds what is read, so that --config pointing at the wrong
// file cannot balloon the agent's memory.
const maxFileBytes = 1 << 20

// Default returns the configuration the agent runs with when it has no file.
func Default() *v1alpha1.AgentConfig {
	c := &v1alpha1.AgentConfig{TypeMeta: typeMeta()}
	c.Default()
	return c
}

// Load reads, defaults and validates the configuration file at path. The
// empty path means no file: Default.
func Load(path string) (*v1alpha1.AgentConfig, error) {
	if path == "" {
		return Default(), nil
	}
	_, c, err := loadFile(path)
	return c, err
}

// loadFile is Load of an actual file, also returning what was read.
func loadFile(path string) ([]byte, *v1alpha1.AgentConfig, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, nil, fileError(path, err)
	}
	c, err := parse(data)
	if err != nil {
		return nil, nil, fileError(path, err)
	}
	return data, c, nil
}

func fileError(path string, err error) error {
	return fmt.Errorf("config %s: %w", path, err)
}

func readFile(path string) ([]byte, error) {
	return ReadFile(path, maxFileBytes, "is this the agent's configuration file?")
}

// ReadFile reads a configuration file of at most maxBytes, with errors that
// say why without repeating the path (the caller puts it in front); hint
// ends the error of a file too large. The NPD monitor configs listed in an
// AgentConfig are read with it too.
func ReadFile(path string, maxBytes int, hint string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		// The path is already in front of the message; keep only why.
		if pathErr := (*fs.PathError)(nil); errors.As(err, &pathErr) {
			return nil, fmt.Errorf("cannot open: %w", pathErr.Err)
		}
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(maxBytes)+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	if len(data) > maxBytes {
		return nil, fmt.Errorf("larger than %d bytes; %s", maxBytes, hint)
	}
	return data, nil
}

// parse decodes, defaults and validates the content of a configuration file.
func parse(data []byte) (*v1alpha1.AgentConfig, error) {
	// YAMLToJSONStrict rejects a key repeated in one mapping, which plain
	// YAML decoding resolves silently to the last one.
	jsonData, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, err
	}

	// Check what the file claims to be before decoding it strictly: a file
	// of another kind should be reported as that, not as a list of unknown
	// fields.
	var tm metav1.TypeMeta
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(jsonData, &tm); err != nil {
		return nil, err
	}
	if errs := validateTypeMeta(tm); len(errs) > 0 {
		return nil, errs.ToAggregate()
	}

	// sigs.k8s.io/json, unlike encoding/json, matches field names
	// case-sensitively (HostEventLog: is unknown, not hostEventLog:) and
	// reports unknown fields with their full path (hostEventLog.paht).
	var c v1alpha1.AgentConfig
	strictErrs, err := sigsjson.UnmarshalStrict(jsonData, &c)
	if err != nil {
		return nil, err
	}
	if len(strictErrs) > 0 {
		return nil, utilerrors.NewAggregate(strictErrs)
	}

	c.Default()
	if errs := c.Validate(); len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	return &c, nil
}

func typeMeta() metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.AgentConfigKind}
}

func validateTypeMeta(tm metav1.TypeMeta) field.ErrorList {
	want := typeMeta()
	return append(requireValue(field.NewPath("apiVersion"), tm.APIVersion, want.APIVersion),
		requireValue(field.NewPath("kind"), tm.Kind, want.Kind)...)
}

// requireValue checks that the field at path, which has only one valid
// value, has it.
func requireValue(path *field.Path, got, want string) field.ErrorList {
	switch got {
	case want:
		return nil
	case "":
		return field.ErrorList{field.Required(path, want)}
	}
	return field.ErrorList{field.NotSupported(path, got, []string{want})}
}
