//go:build tools

// Package tools pins the Kubernetes programs that scripts/k8s-testenv builds, so go mod tidy keeps
// their dependencies in go.mod and go.sum. Test tooling only: no product code lives in Go.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
