//go:build tools

// Package tools pins cosign's command for tools/cosign/build.
package tools

import _ "github.com/sigstore/cosign/v2/cmd/cosign"
