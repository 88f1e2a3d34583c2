//go:build tools

// Package tools records the command this module builds (see go.mod): the etcd server
// binary is the main package at the root of go.etcd.io/etcd/server/v3.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
