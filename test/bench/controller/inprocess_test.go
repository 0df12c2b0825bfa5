package controller

import (
	"context"
	"os"
	"runtime/pprof"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/nodewarden/nodewarden/controllers"
)

// startInProcess runs the controller in the benchmark's process, wired as
// cmd/nodewarden/controller.go wires it (controllers.ManagerOptions and
// controllers.Setup, logs as JSON into logPath), but with
// the client QPS given: 0 is client-go's default (5/s with a burst of 10,
// what the binary had before --kube-api-qps), 50 the binary's default now
// (burst 100), -1 no client-side limit. It stops when the benchmark ends.
func startInProcess(b *testing.B, base *rest.Config, qps float64, logPath string) {
	b.Helper()
	cfg := rest.CopyConfig(base)
	cfg.QPS, cfg.Burst, cfg.RateLimiter = float32(qps), 0, nil
	if qps > 0 {
		// As the binary's --kube-api-qps/--kube-api-burst (50/100).
		cfg.Burst = int(2 * qps)
	}
	out, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	log := zap.New(zap.WriteTo(out))
	mgr, err := ctrl.NewManager(cfg, controllers.ManagerOptions(ctrl.Options{
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 log,
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	}))
	if err != nil {
		b.Fatal(err)
	}
	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := controllers.Setup(mgr, controllers.Options{
		Clientset: clientset, Registerer: prometheus.NewRegistry(), Log: log,
	}); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Every goroutine the manager starts inherits the label, so a CPU
		// profile of the benchmark process can be cut down to the
		// controller's share: go tool pprof -tagfocus nodewarden=controller.
		pprof.Do(ctx, pprof.Labels("nodewarden", "controller"), func(ctx context.Context) {
			if err := mgr.Start(ctx); err != nil {
				b.Errorf("manager: %v", err)
			}
		})
	}()
	b.Cleanup(func() { cancel(); <-done; out.Close() })
}
