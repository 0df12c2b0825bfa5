// Command nodewarden is the one binary of the project: the per-node agent, the
// cluster controller, and the converters from node-problem-detector and Draino
// configuration.
package main

import (
	"os"
	// The image is FROM scratch, without /usr/share/zoneinfo: a maintenance
	// window's timeZone needs the IANA database built in (about 450 kB).
	_ "time/tzdata"

	// CA roots for TLS endpoints outside the cluster (the controller's
	// webhooks): the image has no CA bundle. They are used only where the
	// system has none; SSL_CERT_FILE or a mounted /etc/ssl/certs take
	// precedence. nodewarden-agent does not link them (docs/performance.md).
	_ "golang.org/x/crypto/x509roots/fallback"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
