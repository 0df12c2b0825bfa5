// Command nodewarden is the one binary of the project: the per-node agent, the
// cluster controller, and the converters from node-problem-detector and Draino
// configuration.
package main

import (
	"os"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
