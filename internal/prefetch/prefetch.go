// Package prefetch asks the CPU to start loading memory that is about to
// be used, so that a cache miss overlaps with other work instead of
// stalling it.
//
// A message's way through the server chases pointers from the socket to
// per-connection state (the engine's connection, the client, its channel)
// that, with thousands of connections, is rarely in the cache. Each of
// those first loads is a miss the CPU must wait for: a plain load cannot
// retire until its data arrives, so the work after it can only run ahead
// as far as the reorder buffer reaches. A prefetch instruction retires at
// once. Issued where the address is first known, before work that does not
// need the data (parsing the frame, decoding the JSON), the miss is paid
// during that work.
//
// Prefetching is a hint: any address may be given, nil included, and
// nothing faults. On architectures without an implementation here the
// functions do nothing.
package prefetch

import "unsafe"

// Any prefetches the first n cache lines of what the pointer held in v
// points to (v's data word); v may be nil or hold a non-pointer.
func Any(v any, n int) {
	Lines((*[2]unsafe.Pointer)(unsafe.Pointer(&v))[1], n)
}
