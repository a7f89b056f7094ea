//go:build tools

// Package tools pins etcd's server command for tools/k8s/build.
package tools

import _ "go.etcd.io/etcd/server/v3"
