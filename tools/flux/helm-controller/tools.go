//go:build tools

// Package tools pins Flux's helm-controller for tools/flux/build.
package tools

import _ "github.com/fluxcd/helm-controller"
