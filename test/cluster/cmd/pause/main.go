// Command pause does nothing until it is asked to stop. It is the real node's
// pod sandbox image (what containerd's sandbox_image names) and the workload
// of test pods that only need to run: built from source so that the test
// node pulls nothing from the internet.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
