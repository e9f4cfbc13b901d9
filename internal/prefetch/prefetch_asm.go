//go:build amd64 || arm64

package prefetch

import "unsafe"

// Line prefetches the cache line holding p into all cache levels.
//
//go:noescape
func Line(p unsafe.Pointer)

// Lines prefetches the n cache lines from p on.
//
//go:noescape
func Lines(p unsafe.Pointer, n int)
