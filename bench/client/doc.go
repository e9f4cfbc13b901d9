// Package client is the load generator's WebSocket client: a few epoll event
// loops own every socket, so ten thousand connections cost ten thousand
// small structs and no goroutines.
//
// The path of a server message: a loop reads into its one read buffer, the
// FrameReader parses complete frames in place (only a frame split across
// reads is copied into the connection, and only until it completes), a text
// frame is split on "\n" and each line is scanned by ParseMessage without
// allocating, and the Handler's OnMessage sees it with the time of the
// read() that brought it. Writes queue in the connection and leave in one
// write() per connection at the end of the loop iteration, so a scenario that
// sends many messages in one tick pays one syscall per connection.
//
// Concurrency: Handler callbacks and every method of Conn run on the
// connection's loop goroutine. From any other goroutine use Loop.Post (or
// Loop.Dial, which posts) to get onto the loop. Counters documented as
// atomic may be read from anywhere.
package client
