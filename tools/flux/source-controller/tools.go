//go:build tools

// Package tools pins Flux's source-controller for tools/flux/build.
package tools

import _ "github.com/fluxcd/source-controller"
