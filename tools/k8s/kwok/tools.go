//go:build tools

// Package tools pins kwok's command for tools/k8s/build.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
