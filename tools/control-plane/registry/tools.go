//go:build tools

// Package tools records the command this module builds (see go.mod): the registry server is
// github.com/distribution/distribution/v3/cmd/registry.
package tools

import (
	_ "github.com/distribution/distribution/v3/cmd/registry"
)
