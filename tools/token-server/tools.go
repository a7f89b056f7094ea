//go:build tools

// Package tools pins the token server's command for scripts/dev-setup.
package tools

import _ "github.com/docker/distribution/contrib/token-server"
