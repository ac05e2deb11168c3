//go:build tools

// The build needs the Pushgateway's main package only; this file keeps it (and so every module
// it imports) in go.mod and go.sum, so that `go build -mod=readonly` finds them pinned.
package tools

import _ "github.com/prometheus/pushgateway"
